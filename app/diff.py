"""What differs between two listings of image hashes (two snapshots of a mirror, or two databases), streamed.

Both sides come in identifier order, so the comparison is one merge pass that holds one
entry of each side at a time: two million-entry snapshots compare in memory of a few
entries. Entries are matched by identifier (unique per database, MS); an entry is
changed when its label, its image-data flag or its metadata differ (ours).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from app.domain import Failure, HashlensError


class DiffEntry(NamedTuple):
    """One entry as compared: what Media Server lists about it. `metadata` is the items,
    or their JSON text as the store keeps a snapshot's (decoded only when it differs:
    equal texts are equal items, and most entries do not change between pulls). A named
    tuple: a pull and a diff make millions, and a frozen dataclass is slow to make (ours)."""

    identifier: str
    label: str | None
    has_image_data: bool | None
    metadata: tuple[tuple[str, str], ...] | str = ()

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        if isinstance(self.metadata, str):
            return tuple(map(tuple, json.loads(self.metadata)))
        return self.metadata



# One encoder, made once: json.dumps with these options builds a new one on every call,
# and JSONEncoder.encode still builds its C encoder on every call. Where the build has
# the C encoder it is made once here (0.9 instead of 2.0 µs an entry of two items,
# measured: a pull encodes every entry's metadata).
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
if json.encoder.c_make_encoder is None:
    _metadata_text = _encoder.encode
else:
    _chunks = json.encoder.c_make_encoder(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",",
                                          False, False, True)

    def _metadata_text(items) -> str:
        return "".join(_chunks(items, 0))


def metadata_json(items) -> str:
    """Metadata items as the JSON text a snapshot keeps: compact, not ASCII-escaped. A
    text is passed through (it is one already)."""
    if isinstance(items, str):
        return items
    return _metadata_text(items)

@dataclass(frozen=True, slots=True)
class MetadataChange:
    """A metadata key added (old None), removed (new None) or given another value."""

    key: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Changed:
    """An entry on both sides that differs; unchanged parts are None (or empty)."""

    identifier: str
    label: tuple[str | None, str | None] | None = None
    image_data: tuple[bool | None, bool | None] | None = None
    metadata: tuple[MetadataChange, ...] = ()

    @property
    def relabelled(self) -> bool:
        return self.label is not None

    @property
    def image_data_removed(self) -> bool:
        return self.image_data is not None and self.image_data[0] is True and self.image_data[1] is False


@dataclass(frozen=True, slots=True)
class Difference:
    """One finding: `kind` is added, removed or changed."""

    kind: str
    entry: DiffEntry | None = None  # added: the new entry; removed: the old one
    change: Changed | None = None

    @property
    def identifier(self) -> str:
        return self.entry.identifier if self.entry is not None else self.change.identifier


@dataclass
class DiffCounts:
    added: int = 0
    removed: int = 0
    changed: int = 0
    relabelled: int = 0
    image_data_removed: int = 0
    metadata_changed: int = 0
    compared: int = 0  # entries on both sides

    @property
    def equal(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def count(self, item: Difference) -> None:
        if item.kind == "added":
            self.added += 1
        elif item.kind == "removed":
            self.removed += 1
        else:
            self.changed += 1
            self.relabelled += item.change.relabelled
            self.image_data_removed += item.change.image_data_removed
            self.metadata_changed += bool(item.change.metadata)


def _out_of_order(side: str, previous: str, identifier: str) -> HashlensError:
    """Input out of identifier order is refused: a merge over it would report wrong findings."""
    return HashlensError(
        Failure.STORE_FAILED,
        f"The {side} listing is not in identifier order ('{previous}' before '{identifier}'); "
        "the difference cannot be computed from it.")


def compare(old: Iterable[DiffEntry], new: Iterable[DiffEntry], counts: DiffCounts | None = None) -> Iterator[Difference]:
    """The differences from `old` to `new`, in identifier order. Both inputs must be in
    identifier order (code-point order, as SQL's binary collations sort)."""
    counts = counts if counts is not None else DiffCounts()
    left, right = iter(old), iter(new)
    a, b = next(left, None), next(right, None)
    # The loop of a million-entry difference: no generator layer per side, and an equal
    # entry (most of them) is known without a call.
    while a is not None or b is not None:
        if b is None or (a is not None and a.identifier < b.identifier):
            item = Difference("removed", entry=a)
            a = _following(left, a, "old")
        elif a is None or b.identifier < a.identifier:
            item = Difference("added", entry=b)
            b = _following(right, b, "new")
        else:
            counts.compared += 1
            if a.label == b.label and a.has_image_data == b.has_image_data and a.metadata == b.metadata:
                change = None
            else:
                change = changes(a, b)
            a, b = _following(left, a, "old"), _following(right, b, "new")
            if change is None:
                continue
            item = Difference("changed", change=change)
        counts.count(item)
        yield item


def _following(entries: Iterator[DiffEntry], previous: DiffEntry, side: str) -> DiffEntry | None:
    entry = next(entries, None)
    if entry is not None and entry.identifier <= previous.identifier:
        raise _out_of_order(side, previous.identifier, entry.identifier)
    return entry


def changes(a: DiffEntry, b: DiffEntry) -> Changed | None:
    """How `b` differs from `a` (the same identifier), or None when they are alike."""
    label = (a.label, b.label) if a.label != b.label else None
    image = (a.has_image_data, b.has_image_data) if a.has_image_data != b.has_image_data else None
    meta = metadata_changes(a.items, b.items) if a.metadata != b.metadata else ()
    if label is None and image is None and not meta:
        return None
    return Changed(a.identifier, label, image, meta)


def metadata_changes(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]) -> tuple[MetadataChange, ...]:
    """Key by key, in the order keys first appear (old side first). A key that holds
    several values (Media Server does not forbid it) compares its values as one list."""
    before, after = _by_key(old), _by_key(new)
    out = []
    for key in list(before) + [k for k in after if k not in before]:
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        out.append(MetadataChange(key, _joined(was), _joined(now)))
    return tuple(out)


def _by_key(items) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    return grouped


def _joined(values: list[str] | None) -> str | None:
    if values is None:
        return None
    return values[0] if len(values) == 1 else " | ".join(values)
