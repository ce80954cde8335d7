"""The peewee tables of a Hashlens store and their indexes.

The tables are shaped for databases of ten million hashes: image bytes live in their own
table so listing scans never touch them, a sparse table of position marks lets `start=N`
seek without OFFSET, and every listing path has an index to walk in database order.
"""

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

# 1: the first schema. 2: hl_entry.phash may be NULL (not known: entries from a Media
# Server carry none) and hl_entry.declared_image_data keeps a Media Server's own
# `hasimagedata` apart from whether Hashlens holds the bytes (issue 11 item 3).
SCHEMA_VERSION = 2

# Migration steps by the version they start from: MIGRATIONS[1] takes a version-1 store
# to version 2. Each step receives the Store and runs inside one write transaction; on
# MySQL, where DDL commits implicitly, a step must be safe to run twice. The steps live
# in `app/store/migrations.py`, which fills this table when the store module loads.
MIGRATIONS: dict = {}

database_proxy = DatabaseProxy()


class NameField(CharField):
    """A name or value of at most 254 bytes; compared byte for byte on every backend.

    The field type is mapped per backend when the store opens: MySQL/MariaDB get a binary
    NO PAD collation so 'Café', 'cafe' and 'cafe ' stay three different identifiers."""

    field_type = "HLNAME"

    def get_modifiers(self):
        # The length is part of the per-backend type, before any COLLATE clause.
        return None


class ImageBlobField(BlobField):
    """Image bytes; MySQL's plain BLOB stops at 64 KB, so it maps to LONGBLOB there."""

    field_type = "HLBLOB"


class BaseModel(Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class StoreInfo(BaseModel):
    """Key/value facts about the store itself, among them the schema version."""

    name = CharField(max_length=64, primary_key=True)
    value = TextField()

    class Meta:
        table_name = "hl_store_info"


class ImageDatabase(BaseModel):
    id = AutoField()
    name = NameField(max_length=254, unique=True)
    # Kept exact inside every write transaction, so the picker and unfiltered listings
    # never count rows (ours).
    entry_count = BigIntegerField(default=0)
    created_at = BigIntegerField()

    class Meta:
        table_name = "hl_database"


class Entry(BaseModel):
    """One image hash. The key `id` only grows, so ordering by it is training order."""

    id = BigAutoField()
    database = ForeignKeyField(ImageDatabase, column_name="database_id", on_delete="CASCADE", index=False)
    identifier = NameField(max_length=254)
    label = NameField(max_length=254)
    # 64-bit pHash stored as a signed BIGINT (two's complement) so every backend holds it;
    # NULL when it is not known (a Media Server never lists one): never a placeholder
    # value, which would make every such entry a duplicate of every other.
    phash = BigIntegerField(null=True)
    # Whether Hashlens holds the image bytes (hl_image has a row).
    has_image_data = BooleanField()
    # The `hasimagedata` a Media Server declared (its server holds the image); NULL when
    # the entry did not come from a Media Server's listing (ours, schema 2).
    declared_image_data = BooleanField(null=True)
    image_format = CharField(max_length=16, null=True)
    width = IntegerField(null=True)
    height = IntegerField(null=True)
    byte_size = BigIntegerField(null=True)
    sha256 = CharField(max_length=64, null=True)
    meta_count = IntegerField(default=0)
    trained_at = BigIntegerField()

    class Meta:
        table_name = "hl_entry"
        indexes = (
            (("database", "identifier"), True),
            (("database", "id"), False),
            (("database", "label"), False),
            (("database", "trained_at"), False),
            (("phash",), False),
            (("sha256",), False),
        )


class ImageData(BaseModel):
    entry = ForeignKeyField(Entry, primary_key=True, column_name="entry_id", on_delete="CASCADE")
    data = ImageBlobField()

    class Meta:
        table_name = "hl_image"


class Metadata(BaseModel):
    """Custom key/value metadata; `id` order is the order items were added."""

    id = BigAutoField()
    entry = ForeignKeyField(Entry, column_name="entry_id", on_delete="CASCADE", index=False)
    # "key" and "value" are reserved or awkward words on MySQL, hence the prefixes.
    meta_key = NameField(max_length=254)
    meta_value = NameField(max_length=254)

    class Meta:
        table_name = "hl_metadata"
        indexes = (
            (("entry", "meta_key"), True),
            # Entries' metadata in the order added, without a sort: listings read it by range.
            (("entry", "id"), False),
            # entry_id last: for one key and value, matches come out in database order.
            (("meta_key", "meta_value", "entry", "id"), False),
        )


class PositionMark(BaseModel):
    """Every MARK_SPACING-th entry of a database with its 1-based position, so a listing
    at `start=N` seeks to the nearest mark and steps a short way instead of OFFSET N."""

    database = ForeignKeyField(ImageDatabase, column_name="database_id", on_delete="CASCADE", index=False)
    ordinal = BigIntegerField()
    entry_id = BigIntegerField()

    class Meta:
        table_name = "hl_mark"
        primary_key = False
        indexes = (
            (("database", "ordinal"), False),
            (("database", "entry_id"), False),
        )


class Journal(BaseModel):
    """Append-only history of every change Hashlens makes to the store."""

    id = BigAutoField()
    at_ms = BigIntegerField(index=True)
    username = CharField(max_length=128)
    action = CharField(max_length=64)
    database_name = NameField(max_length=254, null=True)
    identifier = NameField(max_length=254, null=True)
    params = TextField()

    class Meta:
        table_name = "hl_journal"


ALL_TABLES = [StoreInfo, ImageDatabase, Entry, ImageData, Metadata, PositionMark, Journal]


# -- mirrors of Media Server databases (app/store/mirrors.py) ------------------------------
#
# A mirror is an ordinary database (its hl_database row and hl_entry rows) plus its mark
# here: where it comes from, and every complete pull kept as a snapshot for differences.
# The mark is linked by name: a mirror's name never changes (renaming one is refused) and
# a local database never becomes a mirror (pulling into one is refused). These tables are
# not part of the schema version: a writable open creates them when missing, and older
# versions of Hashlens ignore them.


class Mirror(BaseModel):
    """A mirror: its local name (its hl_database row's) and the Media Server database it copies."""

    id = AutoField()
    name = NameField(max_length=254, unique=True)
    server_url = TextField()
    remote_database = NameField(max_length=254)
    created_at = BigIntegerField()

    class Meta:
        table_name = "hl_mirror"


class Snapshot(BaseModel):
    """One complete pull of a mirror."""

    id = AutoField()
    mirror = ForeignKeyField(Mirror, column_name="mirror_id", on_delete="CASCADE", index=False)
    number = IntegerField()
    taken_at = BigIntegerField()
    server_url = TextField()
    remote_database = NameField(max_length=254)
    entry_count = BigIntegerField(default=0)

    class Meta:
        table_name = "hl_snapshot"
        indexes = ((("mirror", "number"), True),)


class SnapshotEntry(BaseModel):
    """An entry as Media Server listed it: no pHash, no image bytes (MS). `metadata` is
    the items as a JSON array of [key, value] pairs, in the server's order."""

    id = BigAutoField()
    snapshot = ForeignKeyField(Snapshot, column_name="snapshot_id", on_delete="CASCADE", index=False)
    identifier = NameField(max_length=254)
    label = NameField(max_length=254, null=True)
    has_image_data = BooleanField(null=True)
    metadata = TextField()

    class Meta:
        table_name = "hl_snapshot_entry"
        indexes = ((("snapshot", "identifier"), True),)


MIRROR_TABLES = [Mirror, Snapshot, SnapshotEntry]
# The hl_store_info row that says every mirror of this store is an ordinary database
# (stores written before that kept a mirror's entries only in its snapshots).
MIRRORS_AS_DATABASES = "mirrors_as_databases"
