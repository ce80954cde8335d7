"""The Source protocol: what every source of image hashes offers the rest of Hashlens.

Hashlens reads and changes image-hash databases through one seam. The SQL store
(`app.store.Store`, on SQLite, PostgreSQL or MySQL/MariaDB) is the first source; a
Media Server mirror or a live server can be others. Services, exports, audits, the
command line and the window take a `Source` and never name the class behind it. A
source is opened by URL through `app.sources.open_source`.

The rules every source keeps (the contract suite in `tests/contract/` checks them):

- A database's entries have an order, "database order" (oldest first, as Media Server
  lists them). A `ListingQuery`'s `start` (1-based) and `maxresults` window the
  filtered, sorted listing; positions in the rows returned count from `start`.
- Each write method is ONE change: atomic (it happens whole or not at all) and
  journalled inside the implementation, in the same transaction, under the Media Server
  action's name. The caller never writes the journal for it. Several changes can be
  made one with `group()`: one transaction and one journal record for the group.
- Errors are `HashlensError`s: a missing database is NO_SUCH_DATABASE, a missing
  identifier NO_SUCH_IDENTIFIER, a missing metadata key NO_SUCH_KEY, a name already
  taken DATABASE_EXISTS / IDENTIFIER_EXISTS / KEY_EXISTS, a change to a read-only source
  READ_ONLY with `read_only_reason()` as its words. Nothing else escapes.
- `change_token()` moves whenever anyone changes the source (windows poll it).

It also holds the one schema-version policy (`schema_version_policy`), so the store,
the command line and the window describe an older or newer store the same way.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from app.domain import (
    Count,
    DatabaseInfo,
    EntryRow,
    ImageInfo,
    JournalEntry,
    ListingPage,
    ListingQuery,
    MirrorSource,
    NewEntry,
)


@runtime_checkable
class CancelHandle(Protocol):
    """A running read that another thread may stop (see `Source.cancellable`)."""

    cancelled: bool

    def cancel(self) -> None: ...


@runtime_checkable
class Source(Protocol):
    """A source of image-hash databases. See the module docstring for the rules."""

    #: True when nothing may be changed; `read_only_reason()` says why in words.
    read_only: bool

    # -- about the source -------------------------------------------------------------

    def describe(self) -> str:
        """Where the source is, for titles, logs and manifests (never a password)."""
        ...

    def read_only_reason(self) -> str:
        """Why changes are refused, as a sentence a person can act on."""
        ...

    @property
    def file_path(self) -> Path | None:
        """The local file holding the source, if it is one (exports refuse to overwrite it)."""
        ...

    def change_token(self) -> int:
        """A number that moves whenever anyone changes the source."""
        ...

    def close(self) -> None:
        """Release this thread's connection; the source stays usable and reconnects."""
        ...

    def cancellable(self) -> contextlib.AbstractContextManager[CancelHandle]:
        """A scope whose running statements another thread can stop with
        `handle.cancel()`; a cancel surfaces as Failure.CANCELLED."""
        ...

    def interrupt(self) -> None:
        """Cancel every statement running inside `cancellable()` (at close)."""
        ...

    # -- reads ------------------------------------------------------------------------

    def list_databases(self) -> list[DatabaseInfo]:
        """Every database with its entry count, by name."""
        ...

    def database_exists(self, name: str) -> bool: ...

    def mirror_of(self, name: str) -> MirrorSource | None:
        """Where the database `name` is mirrored from (a Media Server's URL and database),
        or None for a local database. A mirror's entries change only by a pull: every
        write action refuses it with READ_ONLY (parameter `database`)."""
        ...

    def database_id(self, name: str) -> int:
        """The database's key; raises NO_SUCH_DATABASE when there is none."""
        ...

    def entry_exists(self, database: str, identifier: str) -> bool:
        """Raises NO_SUCH_DATABASE for a missing database."""
        ...

    def list_page(self, query: ListingQuery) -> ListingPage:
        """One window (`start`/`maxresults`) of the filtered, ordered listing. The page's
        `total` is the database's entry count when the query has no filter, else None."""
        ...

    def page_identifiers(self, query: ListingQuery) -> list[str]:
        """Only the identifiers of `list_page(query)`'s rows (cheaper: ListImageHashes
        without imagestatus or metadata needs no more)."""
        ...

    def iter_listing(self, query: ListingQuery, batch: int = 2000) -> Iterator[list[EntryRow]]:
        """The query's whole window in batches, from one consistent snapshot."""
        ...

    def count(self, query: ListingQuery, bound: int | None = None) -> Count:
        """Entries in the unwindowed listing; with `bound`, stop counting past it
        (`Count.exact` is False then)."""
        ...

    def metadata_keys(self, database: str, limit: int = 500) -> list[str]:
        """The metadata keys the database's entries use, sorted."""
        ...

    def image(self, database: str, identifier: str) -> ImageInfo:
        """One entry's label, format, size and image bytes (None once nulled)."""
        ...

    def images_by_key(self, keys: list[int]) -> dict[int, bytes]:
        """Image bytes of entries by `EntryRow.key`; entries without image data are left out."""
        ...

    def history(self, since: int | None = None, until: int | None = None, limit: int | None = None,
                database: str | None = None) -> list[JournalEntry]:
        """Journalled changes, oldest first, `since` <= at_ms < `until`, touching `database`."""
        ...

    def iter_journal(self, since: int | None = None, until: int | None = None, database: str | None = None,
                     batch: int = 5000) -> Iterator[list[JournalEntry]]:
        """The same as `history`, a batch at a time."""
        ...

    # -- writes: each one atomic and journalled inside (the Media Server action) ---------

    def create_database(self, name: str) -> None:
        """CreateImageHashDatabase; DATABASE_EXISTS when the name is taken."""
        ...

    def rename_database(self, name: str, new_name: str) -> None:
        """RenameImageHashDatabase; entries keep their order."""
        ...

    def remove_database(self, name: str) -> int:
        """RemoveImageHashDatabase with all its entries; returns how many there were."""
        ...

    def add_entry(self, database: str, entry: NewEntry, *, source: str | None = None) -> int:
        """TrainImageHash: append one validated entry at the end of the database; returns
        its key. `source` (the image's path) is kept in the journal."""
        ...

    def add_entries(self, database: str, entries: list[tuple[NewEntry, str | None]]) -> None:
        """TrainImageHash of several validated entries, each with its image's path or None,
        appended in order in one transaction, each journalled as its own change: all of
        them, or none and an error."""
        ...

    def remove_entry(self, database: str, identifier: str) -> None:
        """RemoveImageHash; later entries move up one place."""
        ...

    def null_image_data(self, database: str, identifier: str) -> None:
        """NullImageHashImageData: drop the image bytes, keep the hash."""
        ...

    def rename_entry(self, database: str, identifier: str, new_identifier: str) -> None:
        """RenameImageHash; IDENTIFIER_EXISTS (parameter newidentifier) when taken."""
        ...

    def move_entry(self, database: str, identifier: str, new_database: str) -> None:
        """MoveImageHash; the entry takes its place among the target's entries by age."""
        ...

    def relabel(self, database: str, identifier: str, label: str, new_label: str) -> None:
        """RelabelImageHashImage; NO_SUCH_LABEL unless the entry's label is `label`."""
        ...

    def add_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        """AddImageHashMetadata; KEY_EXISTS when the entry has the key already."""
        ...

    def update_metadata(self, database: str, identifier: str, key_name: str, value: str) -> None:
        """UpdateImageHashMetadata; NO_SUCH_KEY when the entry lacks the key."""
        ...

    def remove_metadata(self, database: str, identifier: str, key_name: str) -> None:
        """RemoveImageHashMetadata; NO_SUCH_KEY when the entry lacks the key."""
        ...

    def group(self, action: str, database: str | None,
              params: dict | None = None) -> contextlib.AbstractContextManager[dict]:
        """Several changes as one (an import): one transaction, and one journal record
        `(action, database, params)` written as the block ends, instead of one per change.
        The block may fill in the yielded params dict before it ends."""
        ...


@runtime_checkable
class SqlSource(Source, Protocol):
    """The optional extension a SQL store offers on top of `Source`, for the work that
    needs SQL itself: the audit's scans and integrity checks, bulk loads (samples). Code
    that needs it says so by taking a `SqlSource`; everything else takes a `Source`."""

    #: "sqlite", "postgresql" or "mysql".
    backend: str
    #: The public SQL runner (`app.store.sql.SqlRunner`): exec/one/all/limit, `?` placeholders.
    sql: object
    #: The schema version the store records (None when it records none).
    schema_version: int | None

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """One consistent read snapshot across several statements."""
        ...

    def writing(self) -> contextlib.AbstractContextManager[object]:
        """One write transaction; changes made inside are journalled by the caller."""
        ...

    def record(self, action: str, database: str | None, identifier: str | None, params: dict) -> None:
        """Append one journal record; inside `writing()`."""
        ...

    @property
    def needs_migration(self) -> bool:
        """Whether the store's schema is older than this Hashlens writes."""
        ...

    def migrate(self, backup_to: Path | None = None) -> Path | None:
        """Upgrade an older schema after a backup; returns the backup's path."""
        ...


#: Every member a Source has: the static list a check without `isinstance` can use.
SOURCE_MEMBERS: tuple[str, ...] = tuple(sorted(
    {name for name in Source.__dict__ if not name.startswith("_")} | set(Source.__annotations__)
))


# -- the schema-version policy ------------------------------------------------------------


class SchemaStanding(enum.Enum):
    """How a store's schema version stands against the one this Hashlens writes."""

    CURRENT = "current"
    OLDER = "older"  # readable; writable after `hashlens migrate` (it backs up first)
    NEWER = "newer"  # written by a newer Hashlens: read it, never write it
    UNKNOWN = "unknown"  # the store records no version


@dataclass(frozen=True)
class SchemaPolicy:
    """The one answer to "may this Hashlens change a store of that schema version?"."""

    standing: SchemaStanding
    found: int | None
    ours: int

    @property
    def writable(self) -> bool:
        return self.standing is SchemaStanding.CURRENT

    @property
    def needs_migration(self) -> bool:
        return self.standing is SchemaStanding.OLDER

    def reason(self, where: str) -> str | None:
        """Why a store at `where` is read-only, or None when its version allows writing."""
        if self.standing is SchemaStanding.NEWER:
            return (f"The store {where} was written by a newer Hashlens (schema {self.found}; this "
                    f"version understands {self.ours}), so this version only reads it.")
        if self.standing is SchemaStanding.OLDER:
            return (f"The store {where} has the older schema {self.found} (this version writes "
                    f"{self.ours}); it is read-only until you run 'hashlens migrate', which backs "
                    "it up first.")
        if self.standing is SchemaStanding.UNKNOWN:
            return f"The store {where} records no schema version, so this version only reads it."
        return None


def schema_version_policy(found: int | None, ours: int) -> SchemaPolicy:
    """The policy for a store at schema `found` opened by a Hashlens writing `ours`:
    older stores are read-only until `hashlens migrate` (never migrated silently,
    reliability D4); newer ones are read-only for good in this version."""
    if found is None:
        standing = SchemaStanding.UNKNOWN
    elif found < ours:
        standing = SchemaStanding.OLDER
    elif found > ours:
        standing = SchemaStanding.NEWER
    else:
        standing = SchemaStanding.CURRENT
    return SchemaPolicy(standing, found, ours)
