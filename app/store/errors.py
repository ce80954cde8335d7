"""Driver errors as HashlensErrors a person can act on: which store, what happened, what next."""

from __future__ import annotations

from app.domain import Failure, HashlensError


def reason(exc: BaseException) -> str:
    """The first line of a driver's message (or the error's class when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def identifier_exists(identifier: str, parameter: str = "identifier", database: str | None = None) -> HashlensError:
    where = f" in '{database}'" if database else ""
    return HashlensError(
        Failure.IDENTIFIER_EXISTS, f"'{parameter}={identifier}' already exists{where}", parameter=parameter
    )


def no_such_identifier(identifier: str, parameter: str = "identifier") -> HashlensError:
    return HashlensError(
        Failure.NO_SUCH_IDENTIFIER, f"'{parameter}={identifier}' does not exist in this database", parameter=parameter,
    )


def transient_read_error(where: str, text: str) -> HashlensError:
    """A read that failed although the store checked out healthy: another program was
    using the file. The connection is renewed; the next try usually works."""
    return _transient(HashlensError(
        Failure.STORE_UNAVAILABLE,
        f"The store {where} could not be read just now ({text}), probably because another program is "
        "using it; its check found no damage. Hashlens has reconnected: try again.",
    ))


def _transient(error: HashlensError, *, retry: bool = False) -> HashlensError:
    """Mark an error that passes by itself (a lock, a lost connection), as opposed to damage:
    `transient` tells the window to keep the store open; `retry` makes the store try a
    change again by itself (a deadlock or serialization failure)."""
    error.transient = True
    error.retry = retry
    return error


def translate(exc: BaseException, where: str) -> HashlensError:
    """A driver error on the store described as `where`, as a HashlensError."""
    if isinstance(exc, HashlensError):
        return exc
    text = reason(exc)
    low = text.lower()
    if "deadlock" in low or "could not serialize" in low or "serialization failure" in low:
        # Lost a race with another writer: the store tries the change again by itself.
        return _transient(HashlensError(
            Failure.STORE_BUSY,
            f"The store {where} is busy (another change collided with this one); nothing was written. "
            "Retry in a moment.",
        ), retry=True)
    if "locked" in low or "busy" in low or "lock wait timeout" in low:
        return _transient(HashlensError(
            Failure.STORE_BUSY,
            f"The store {where} is busy (another writer holds it: another program, or a pull from a Media Server, "
            "which holds it until the pull is complete); nothing was written. Retry in a moment.",
        ))
    if "conflict with recovery" in low:
        return _transient(HashlensError(
            Failure.STORE_BUSY,
            f"The replica {where} stopped the query to apply changes from its primary; "
            "try again, or ask for hot_standby_feedback on the replica for long audits.",
        ))
    if "command denied" in low or "permission denied" in low:
        return HashlensError(
            Failure.READ_ONLY,
            f"Your account may not change {where} ({text}). "
            "Open the store read-only, or ask its owner for write rights.",
        )
    if "interrupted" in low or "canceling statement" in low or "cancelled" in low:
        return HashlensError(Failure.CANCELLED, "The operation was cancelled; nothing was changed.")
    if "disk is full" in low or "no space" in low or "database or disk is full" in low:
        return HashlensError(Failure.STORE_FAILED, f"The disk holding {where} is full; nothing was written.")
    if "readonly" in low or "read-only" in low or "read only" in low:
        return HashlensError(Failure.READ_ONLY, f"The store {where} cannot be written: {text}.")
    if "not a database" in low or "malformed" in low or "corrupt" in low or "disk i/o error" in low:
        # What a damaged file says, but also what SQLite can say for a moment while
        # another process uses the file: the store checks before it believes it.
        error = HashlensError(
            Failure.STORE_UNAVAILABLE,
            f"The store {where} is damaged or is not a Hashlens store ({text}). "
            "Run 'hashlens audit' for an integrity report; Hashlens never repairs it in place.",
        )
        error.suspect = text
        return error
    if "server has gone away" in low or "lost connection" in low or "connection" in low and "closed" in low \
            or "terminating connection" in low:
        return _transient(HashlensError(
            Failure.STORE_UNAVAILABLE,
            f"The connection to {where} was lost ({text}); nothing half-done was kept. Try again to reconnect.",
        ))
    return HashlensError(Failure.STORE_FAILED, f"The store reported an error: {text}")
