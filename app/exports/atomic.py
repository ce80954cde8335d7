"""Atomic files: written beside the target, fsynced, and moved into place only when whole.

An interrupted, failed or cancelled export never leaves a file that looks finished: the
data goes to `.hashlens-<name>.<pid>-<random>.part` in the target's folder, is flushed
and fsynced, then `os.replace` puts it in place and the folder is fsynced so the rename
survives a power cut. On any error the temporary file is removed and an existing target
is left exactly as it was (reliability F1, A11)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

from app import faults
from app.domain import Failure, HashlensError

PART_PREFIX = ".hashlens-"
PART_SUFFIX = ".part"
# Temp names keep at most this many bytes of the target's name, so a 255-byte target
# name does not make a temp name the file system refuses.
_NAME_BYTES = 96
_PART_RE = re.compile(r"^\.hashlens-.*\.(\d+)-[0-9a-f]{12}\.part$", re.S | re.ASCII)
# A temp file whose process still runs is another export at work; one whose process is
# gone (or that is older than this, in case its pid was reused) is stale.
STALE_AFTER_S = 24 * 3600


class ExportFailed(HashlensError):
    """An export could not be written; the target is untouched and no temp file is left."""

    def __init__(self, description: str):
        super().__init__(Failure.FILE_FAILED, description, parameter="output")


def os_failure(path: Path | str, exc: OSError, doing: str = "write") -> ExportFailed:
    """An OSError as a sentence naming the path, the errno and what to do."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    hint = {
        errno.ENOSPC: " Free some space or choose another disk.",
        errno.EDQUOT: " Free some space or choose another disk.",
        errno.EFBIG: " The file system cannot hold a file this large; choose another disk.",
        errno.EACCES: " Choose a folder you may write to.",
        errno.EPERM: " Choose a folder you may write to.",
        errno.EROFS: " The disk is read-only; choose another folder.",
        errno.ENAMETOOLONG: " Choose a shorter name.",
        errno.ENOENT: " Check that the folder exists.",
    }.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    return ExportFailed(f"Cannot {doing} '{path}': {reason} ({name}); nothing was written there.{hint}")


def _part_name(target: Path) -> str:
    stem = target.name.encode("utf-8", "surrogateescape")[:_NAME_BYTES].decode("utf-8", "ignore")
    return f"{PART_PREFIX}{stem}.{os.getpid()}-{secrets.token_hex(6)}{PART_SUFFIX}"


def fsync_folder(folder: Path) -> None:
    # Some systems (Windows, some network file systems) cannot open or fsync a folder;
    # the rename is then as durable as the platform allows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_after_replace(target: Path) -> None:
    # The file is complete and in place; only the durability of the rename is in doubt.
    try:
        fsync_folder(target.parent)
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "error")
        raise ExportFailed(
            f"'{target}' was written completely, but its folder could not be flushed to disk: "
            f"{exc.strerror} ({name}). The file may not survive a power cut; check the disk."
        ) from None


def refuse_store_target(target: Path, store_path: Path | None) -> None:
    """Refuse to write over the open SQLite store or its -wal/-shm/-journal files."""
    if store_path is None:
        return
    resolved = target.resolve()
    base = store_path.resolve()
    forbidden = {base, *(base.with_name(base.name + s) for s in ("-wal", "-shm", "-journal"))}
    if resolved in forbidden:
        raise ExportFailed(
            f"'{target}' is the open store file (or one of its companions); an export there "
            "would destroy the store. Choose another file name."
        )


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def refuse_special(target: Path, *, folder_ok: bool = False) -> None:
    """Refuse a target that exists and is not a regular file (nor, for a folder
    export, a folder): an export replaces only what an export could have written.
    Run as root, replacing `/dev/full` replaced the system's device (issue 10 item 2)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise ExportFailed(f"Cannot check '{target}' before writing: {getattr(exc, 'strerror', None) or exc}.") from None
    kind = _kind(mode)
    if kind is None or (folder_ok and kind == "a folder"):
        return
    if kind == "a folder":
        raise ExportFailed(f"'{target}' is a folder; give a file name inside it.")
    if kind == "a symbolic link":
        raise ExportFailed(
            f"'{target}' is a symbolic link (to '{os.readlink(target)}'); Hashlens does not write through a link "
            "unless asked (--follow-symlinks, or the question in the export dialog). Nothing was written."
        )
    raise ExportFailed(
        f"'{target}' is {kind}, not a regular file; an export only ever replaces a regular file, so nothing "
        "was written there (and nothing beside it). Choose a file name."
    )


def check_target(target: Path, store_path: Path | None = None, *, folder_ok: bool = False,
                 follow_symlinks: bool = False) -> Path:
    """The checks every export makes before it writes a byte; returns the path to write.

    With `follow_symlinks`, a symbolic link at `target` is followed and the file it
    points to is the one replaced (and checked as strictly); without it, a link is refused."""
    target = Path(target)
    if not target.name or target.name in (".", ".."):
        raise ExportFailed(f"'{target}' does not name a file; give a file name.")
    if follow_symlinks and target.is_symlink():
        try:
            target = target.resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise ExportFailed(f"Cannot follow the link '{target}': {exc}.") from None
    refuse_store_target(target, store_path)
    refuse_special(target, folder_ok=folder_ok)
    parent = target.parent
    if not parent.is_dir():
        raise ExportFailed(f"Cannot write '{target}': the folder '{parent}' does not exist.")
    return target


class _CommitOnSuccess:
    """A `with` block commits on success and discards the temporary on any failure."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.discard()
            return False
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise
        return False


class AtomicFile(_CommitOnSuccess):
    """A binary file that appears at `target` only when `commit()` succeeds.

    Use it as a context manager: leaving the block by an exception (a failure, a
    cancel) removes the temporary file; a normal exit commits."""

    def __init__(self, target: Path | str, store_path: Path | None = None, *, follow_symlinks: bool = False):
        self.target = check_target(Path(target), store_path, follow_symlinks=follow_symlinks)
        self.part = self.target.parent / _part_name(self.target)
        self._file = None
        self.size = 0

    def __enter__(self) -> "AtomicFile":
        try:
            # 'x' so that a clash with another file is an error, never an overwrite.
            self._file = open(self.part, "xb")
        except OSError as exc:
            raise os_failure(self.target, exc, "create a file beside") from None
        return self

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise os_failure(self.target, exc) from None
        self.size += len(data)

    @property
    def file(self):
        """The open temporary file, for writers (zip) that want a file object."""
        return self._file

    def commit(self) -> None:
        try:
            self._file.flush()
            faults.checkpoint("export.fsync")
            os.fsync(self._file.fileno())
            self._file.close()
            faults.checkpoint("export.replace")
            # Checked again at the last moment: a device or link put there meanwhile is
            # never replaced.
            refuse_special(self.target)
            os.replace(self.part, self.target)
        except OSError as exc:
            raise os_failure(self.target, exc) from None
        _fsync_after_replace(self.target)

    def discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.part)


class AtomicPath(_CommitOnSuccess):
    """A temporary path (a file a library writes itself, or a folder) moved into place
    on success. Used for XLSX (XlsxWriter writes the file on close) and image folders."""

    def __init__(self, target: Path | str, store_path: Path | None = None, *, folder: bool = False,
                 follow_symlinks: bool = False):
        self.target = check_target(Path(target), store_path, folder_ok=folder, follow_symlinks=follow_symlinks)
        self.folder = folder
        if folder and self.target.exists():
            if not self.target.is_dir():
                raise ExportFailed(f"'{self.target}' exists and is not a folder; choose a new folder name.")
            if any(self.target.iterdir()):
                raise ExportFailed(
                    f"The folder '{self.target}' is not empty; an image export needs a new or empty folder "
                    "so no file of yours is overwritten."
                )
        self.part = self.target.parent / _part_name(self.target)

    def __enter__(self) -> Path:
        if self.folder:
            try:
                os.mkdir(self.part)
            except OSError as exc:
                raise os_failure(self.target, exc, "create a folder beside") from None
        return self.part

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self.part.is_dir() and not self.part.is_symlink():
                shutil.rmtree(self.part)
            else:
                os.unlink(self.part)

    def commit(self) -> None:
        try:
            if not self.folder:
                with open(self.part, "rb+") as f:
                    faults.checkpoint("export.fsync")
                    os.fsync(f.fileno())
            else:
                fsync_folder(self.part)
            faults.checkpoint("export.replace")
            refuse_special(self.target, folder_ok=self.folder)
            if self.folder and self.target.is_dir():
                os.rmdir(self.target)  # checked empty above; os.replace cannot replace a folder
            os.replace(self.part, self.target)
        except OSError as exc:
            raise os_failure(self.target, exc) from None
        _fsync_after_replace(self.target)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return False
    return True


def sweep_stale(folder: Path | str, *, now: float | None = None) -> list[Path]:
    """Remove the `.hashlens-*.part` files and folders that a killed or crashed export
    left in `folder`. Parts of exports still running (their process is alive) are kept.
    Call it at startup for the folders exports go to, and before each export."""
    folder = Path(folder)
    removed = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _PART_RE.match(name)
        if not match:
            continue
        path = folder / name
        try:
            age = now - path.lstat().st_mtime
        except OSError:
            continue
        if _pid_alive(int(match.group(1))) and age < STALE_AFTER_S:
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed
