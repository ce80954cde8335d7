"""What a staged change does to a Media Server's entries, its reverse, its words, and the change-set as an ACI script.

The push engine (`app.mediaserver.push`) needs, for every staged action, the entries it
touches and their state before and after, to confirm an action from a listing, to tell
after a lost answer whether it took effect, and to tell a server someone else changed
from one our own earlier push changed. All of that is `apply` over `Seen` states here,
pure Python, with no network and no store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from app.mediaserver_codec import names
from app.mediaserver_codec.request import aci_line, aci_url

Key = tuple[str, str]  # (remote database, identifier)


@dataclass(frozen=True)
class Seen:
    """An entry as ListImageHashes shows it (MS: no hash, no image bytes). Metadata is
    compared as a sorted tuple: Media Server documents no order for it (unknown)."""

    label: str | None
    has_image_data: bool | None
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, label, has_image_data, metadata: Iterable[tuple[str, str]]) -> Seen:
        return cls(label, has_image_data, tuple(sorted((str(k), str(v)) for k, v in metadata)))

    def value(self, key: str) -> str | None:
        return next((v for k, v in self.metadata if k == key), None)

    def describe(self) -> str:
        items = ", ".join(f"{k}={v}" for k, v in self.metadata) or "none"
        data = {True: "yes", False: "no", None: "not known"}[self.has_image_data]
        return f"label '{self.label}', image data {data}, metadata {items}"


# A state map: key -> Seen, None when the entry does not exist, UNKNOWN when nothing is
# known about it (an entry of a database no mirror here copies).
UNKNOWN = "unknown"
States = dict


def describe_state(state) -> str:
    if state is None:
        return "no such entry"
    if state is UNKNOWN:
        return "not known"
    return state.describe()


def keys_of(action: str, params: Mapping[str, str]) -> list[Key]:
    """The entries an action reads or changes: its own, and the one it renames or moves to."""
    database, identifier = params.get("database", ""), params.get("identifier", "")
    found = [(database, identifier)]
    if action == names.RENAME_IMAGE_HASH:
        found.append((database, params.get("newidentifier", "")))
    elif action == names.MOVE_IMAGE_HASH:
        found.append((params.get("newdatabase", ""), identifier))
    return found


def apply(action: str, params: Mapping[str, str], states: States) -> States:
    """The states after the action, as Media Server applies it (MS); a copy. An action
    that the server would refuse (its entry absent, its label not the current one)
    changes nothing, as the server changes nothing."""
    out = dict(states)
    k = (params.get("database", ""), params.get("identifier", ""))
    entry = out.get(k, UNKNOWN)
    if entry is None:
        return out
    if entry is UNKNOWN:
        # Nothing known: the effect is not known either (never compared).
        for key in keys_of(action, params):
            out[key] = UNKNOWN
        return out
    if action == names.REMOVE_IMAGE_HASH:
        out[k] = None
    elif action == names.NULL_IMAGE_HASH_IMAGE_DATA:
        out[k] = replace(entry, has_image_data=False)
    elif action == names.RENAME_IMAGE_HASH:
        target = (k[0], params.get("newidentifier", ""))
        if out.get(target) is None:
            out[target], out[k] = entry, None
    elif action == names.MOVE_IMAGE_HASH:
        target = (params.get("newdatabase", ""), k[1])
        if out.get(target, UNKNOWN) in (None, UNKNOWN):
            out[target], out[k] = entry, None
    elif action == names.RELABEL_IMAGE_HASH_IMAGE:
        if entry.label == params.get("imagelabel"):
            out[k] = replace(entry, label=params.get("newimagelabel"))
    elif action == names.ADD_IMAGE_HASH_METADATA:
        key = params.get("key", "")
        if entry.value(key) is None:
            out[k] = Seen.of(entry.label, entry.has_image_data, [*entry.metadata, (key, params.get("value", ""))])
    elif action == names.UPDATE_IMAGE_HASH_METADATA:
        key = params.get("key", "")
        if entry.value(key) is not None:
            out[k] = Seen.of(entry.label, entry.has_image_data,
                             [(a, params.get("newvalue", "") if a == key else b) for a, b in entry.metadata])
    elif action == names.REMOVE_IMAGE_HASH_METADATA:
        key = params.get("key", "")
        out[k] = Seen.of(entry.label, entry.has_image_data, [(a, b) for a, b in entry.metadata if a != key])
    return out


def same(expected, found) -> bool:
    """Whether a listed state is the expected one; an UNKNOWN expectation matches anything."""
    return expected is UNKNOWN or expected == found


def describe(action: str, params: Mapping[str, str]) -> str:
    """The action in words a person reads before it is sent."""
    db, ident = params.get("database", ""), params.get("identifier", "")
    where = f"'{ident}' in '{db}'"
    return {
        names.RELABEL_IMAGE_HASH_IMAGE: lambda: f"relabel {where} from '{params.get('imagelabel')}' to "
                                                f"'{params.get('newimagelabel')}'",
        names.ADD_IMAGE_HASH_METADATA: lambda: f"add metadata {params.get('key')}={params.get('value')} to {where}",
        names.UPDATE_IMAGE_HASH_METADATA: lambda: f"set metadata {params.get('key')} of {where} to "
                                                  f"'{params.get('newvalue')}'",
        names.REMOVE_IMAGE_HASH_METADATA: lambda: f"remove metadata {params.get('key')} from {where}",
        names.RENAME_IMAGE_HASH: lambda: f"rename {where} to '{params.get('newidentifier')}'",
        names.MOVE_IMAGE_HASH: lambda: f"move {where} to database '{params.get('newdatabase')}'",
        names.NULL_IMAGE_HASH_IMAGE_DATA: lambda: f"remove the image data of {where} (the hash stays)",
        names.REMOVE_IMAGE_HASH: lambda: f"remove {where} (hash, image data and metadata)",
    }.get(action, lambda: f"{action} on {where}")()


def reverse(action: str, params: Mapping[str, str], prior: Mapping[str, str]) -> tuple[str, list] | str:
    """The action that undoes this one on a server, as (name, params); or, when none
    can, the reason in words (Media Server keeps nothing to restore from: ours)."""
    db, ident = params.get("database", ""), params.get("identifier", "")
    if action == names.RELABEL_IMAGE_HASH_IMAGE:
        return action, [("database", db), ("identifier", ident), ("imagelabel", params.get("newimagelabel")),
                        ("newimagelabel", params.get("imagelabel"))]
    if action == names.ADD_IMAGE_HASH_METADATA:
        return names.REMOVE_IMAGE_HASH_METADATA, [("database", db), ("identifier", ident), ("key", params.get("key"))]
    if action in (names.UPDATE_IMAGE_HASH_METADATA, names.REMOVE_IMAGE_HASH_METADATA):
        old = prior.get("value")
        if old is None:
            return "the value before the change was not recorded, so it cannot be put back"
        if action == names.UPDATE_IMAGE_HASH_METADATA:
            return action, [("database", db), ("identifier", ident), ("key", params.get("key")), ("newvalue", old)]
        return names.ADD_IMAGE_HASH_METADATA, [("database", db), ("identifier", ident), ("key", params.get("key")),
                                               ("value", old)]
    if action == names.RENAME_IMAGE_HASH:
        return action, [("database", db), ("identifier", params.get("newidentifier")), ("newidentifier", ident)]
    if action == names.MOVE_IMAGE_HASH:
        return action, [("database", params.get("newdatabase")), ("identifier", ident), ("newdatabase", db)]
    if action == names.NULL_IMAGE_HASH_IMAGE_DATA:
        return ("the image data is deleted on the server and no action sends it back; train the image again "
                "(TrainImageHash) to restore it")
    if action == names.REMOVE_IMAGE_HASH:
        return ("the hash, its image data and its metadata are deleted on the server; no action restores them; "
                "train the image again (TrainImageHash) with its label and metadata")
    return f"{action} has no known reverse"


def script_lines(changes: Iterable, base_url: str | None, *, title: str) -> list[str]:
    """An ACI script: `#` lines saying what each request does, then the request, one per
    line (a full URL when `base_url` is given, else a path starting with `/action=`).
    Every value is percent-encoded, so each line can be sent as it is with curl."""
    lines = [f"# {title}", "# One request per line; send them in this order, each only after the one before "
                          "answered <response>SUCCESS</response>.", ""]
    for number, change in enumerate(changes, 1):
        params = dict(change.params)
        lines.append(f"# {number}. {describe(change.action, params)}")
        lines.append(_request(base_url, change.action, list(change.params)))
        lines.append("")
    return lines


def undo_lines(changes: list, base_url: str | None, *, title: str) -> list[str]:
    """The reverse of each change, last change first; a change no action can reverse is
    a comment that says why, so nothing is silently missing."""
    lines = [f"# {title}", "# Send in this order, after the change-set was pushed; each line undoes one change, "
                          "the last change first.", ""]
    for number, change in reversed(list(enumerate(changes, 1))):
        params = dict(change.params)
        undone = reverse(change.action, params, change.prior)
        lines.append(f"# undoes {number}. {describe(change.action, params)}")
        if isinstance(undone, str):
            lines.append(f"# CANNOT BE UNDONE: {undone}.")
        else:
            lines.append(_request(base_url, undone[0], undone[1]))
        lines.append("")
    return lines


def _request(base_url: str | None, action: str, params: list) -> str:
    return aci_url(base_url, action, params) if base_url else "/" + aci_line(action, params)
