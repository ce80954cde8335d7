"""The audit-check registry: every check, its kinds of finding and their levels, in one table.

Each check is one module in `app.audits.checks` that calls `register` with its name, the
kinds of finding it makes (each with its level) and a function from what the audit
gathered to findings. The runner asks every registered check in turn; a finding's level,
the command line's `--fail-on`, the reports and the window's list all read this table,
so a new check is one new module (plus its tests) and nothing else changes."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the model imports this module, not the reverse
    from app.audits.model import Finding


class Level(enum.IntEnum):
    """How serious a finding is; `--fail-on LEVEL` fails on this level and above."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Level":
        return cls[text.strip().upper()]


class Scope(str, enum.Enum):
    """What a check looks at, and so what its `findings` function is given."""

    DATABASE = "database"  # (scan, groups): one database's pass and its duplicate groups
    ACROSS = "across"  # (groups, scope): near-duplicate groups spanning databases
    STORE = "store"  # (checks,): the store-level checks (integrity, orphans, schema)


@dataclass(frozen=True)
class Check:
    """One audit check. `kinds` maps each kind of finding it makes to its level;
    `findings` turns what the audit gathered (see `Scope`) into findings, in order."""

    name: str
    scope: Scope
    kinds: dict[str, Level]
    findings: Callable[..., list["Finding"]]
    title: str = ""


_CHECKS: dict[str, Check] = {}
_LEVELS: dict[str, Level] = {}


def register(check: Check) -> Check:
    """Add a check. A kind keeps one level whichever check makes it; a second check
    of the same name, or a kind given another level, is a programming error."""
    if check.name in _CHECKS and _CHECKS[check.name] != check:
        raise ValueError(f"an audit check named {check.name!r} is already registered")
    for kind, level in check.kinds.items():
        if _LEVELS.get(kind, level) is not level:
            raise ValueError(f"the finding kind {kind!r} already has the level {_LEVELS[kind].label}")
    _CHECKS[check.name] = check
    _LEVELS.update(check.kinds)
    return check


def unregister(name: str) -> None:
    """Remove a check and the kinds only it makes (tests register toy checks)."""
    check = _CHECKS.pop(name, None)
    if check is not None:
        still = {k for c in _CHECKS.values() for k in c.kinds}
        for kind in check.kinds:
            if kind not in still:
                _LEVELS.pop(kind, None)


def checks(scope: Scope | None = None) -> list[Check]:
    """The registered checks (of one scope), in registration order: the order of findings."""
    return [c for c in _CHECKS.values() if scope is None or c.scope is scope]


def kinds() -> dict[str, Level]:
    """Every kind of finding with its level."""
    return dict(_LEVELS)


def level_of(kind: str) -> Level:
    return _LEVELS[kind]
