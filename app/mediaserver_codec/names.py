"""The action names, in Media Server's spelling, in one table: nothing else spells them.

Names are matched regardless of case (MS); a response's <action> is the name in upper
case (MS). Journal records and action-log lines use the same spelling."""

from __future__ import annotations

# The ACI actions Hashlens answers (MS names; the database-management four follow
# Media Server's face and object families: ours, by analogy).
LIST_IMAGE_HASHES = "ListImageHashes"
TRAIN_IMAGE_HASH = "TrainImageHash"
REMOVE_IMAGE_HASH = "RemoveImageHash"
NULL_IMAGE_HASH_IMAGE_DATA = "NullImageHashImageData"
RENAME_IMAGE_HASH = "RenameImageHash"
MOVE_IMAGE_HASH = "MoveImageHash"
RELABEL_IMAGE_HASH_IMAGE = "RelabelImageHashImage"
ADD_IMAGE_HASH_METADATA = "AddImageHashMetadata"
UPDATE_IMAGE_HASH_METADATA = "UpdateImageHashMetadata"
REMOVE_IMAGE_HASH_METADATA = "RemoveImageHashMetadata"
SYNC_IMAGE_HASHES = "SyncImageHashes"
EXPORT_IMAGE_HASH_DATABASE = "ExportImageHashDatabase"
IMPORT_IMAGE_HASH_DATABASE = "ImportImageHashDatabase"
CREATE_IMAGE_HASH_DATABASE = "CreateImageHashDatabase"
LIST_IMAGE_HASH_DATABASES = "ListImageHashDatabases"
RENAME_IMAGE_HASH_DATABASE = "RenameImageHashDatabase"
REMOVE_IMAGE_HASH_DATABASE = "RemoveImageHashDatabase"

# Media Server's queue of asynchronous actions (MS): `hashlens serve` has one, `hashlens
# aci` answers at once. GetStatus and GetVersion are the health checks clients send (MS).
QUEUE_INFO = "QueueInfo"
GET_STATUS = "GetStatus"
GET_VERSION = "GetVersion"

# Journal-only names (ours): changes made by Hashlens's own tools that no ACI action names.
IMPORT_IMAGE_HASHES = "ImportImageHashes"
APPEND_IMAGE_HASHES = "AppendImageHashes"
# A mirror's staged change sent to its Media Server (params: the outcome, sent,
# confirmed, failed or pending again, and the request), and staged changes taken back.
PUSH_IMAGE_HASH_CHANGE = "PushImageHashChange"
DISCARD_IMAGE_HASH_CHANGES = "DiscardImageHashChanges"
# One entry of a publish sent to a Media Server (params: the outcome, sent, queued,
# confirmed, failed or not on the server, and where to).
PUBLISH_IMAGE_HASH = "PublishImageHash"
# A pull's commit: a mirror's new snapshot and its entries replaced, one journal record.
PULL_IMAGE_HASHES = "PullImageHashes"
ATTACH_IMAGES = "AttachImages"  # pHashes (and images) computed from files for known entries

ACI_ACTIONS: tuple[str, ...] = (
    LIST_IMAGE_HASHES, TRAIN_IMAGE_HASH, REMOVE_IMAGE_HASH, NULL_IMAGE_HASH_IMAGE_DATA, RENAME_IMAGE_HASH,
    MOVE_IMAGE_HASH, RELABEL_IMAGE_HASH_IMAGE, ADD_IMAGE_HASH_METADATA, UPDATE_IMAGE_HASH_METADATA,
    REMOVE_IMAGE_HASH_METADATA, SYNC_IMAGE_HASHES, EXPORT_IMAGE_HASH_DATABASE, IMPORT_IMAGE_HASH_DATABASE,
    CREATE_IMAGE_HASH_DATABASE, LIST_IMAGE_HASH_DATABASES, RENAME_IMAGE_HASH_DATABASE, REMOVE_IMAGE_HASH_DATABASE,
)

_BY_LOWER = {name.lower(): name for name in ACI_ACTIONS}


def canonical_action(name: str | None) -> str | None:
    """The Media Server spelling of an action Hashlens answers, matched regardless of
    case (MS), or None for an action it does not know."""
    return _BY_LOWER.get((name or "").lower())


def response_action(name: str) -> str:
    """The text of a response's <action>: the name in upper case (MS)."""
    return name.upper()
