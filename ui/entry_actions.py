"""The window's write actions: each asks what it needs, runs the same `app.services.actions`
function the ACI and command line use (on the write lane), and reports the ACI line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence

from app.domain import EntryRow, Failure, HashlensError, check_text
from app.mediaserver_codec import names
from app.mediaserver_codec.request import aci_line
from app.services import actions
from app.services.sample import generate_sample
from ui.errors import plain_words
from ui.icons import set_icon

SAMPLE_COUNT = 2000
# Errors of the store as a whole, not of one entry: a batch stops at the first.
STORE_WIDE = {Failure.STORE_BUSY, Failure.STORE_UNAVAILABLE, Failure.STORE_FAILED, Failure.READ_ONLY,
              Failure.CANCELLED}


def text_check(what: str, taken=None):
    """A `Prompter.text` check for a name or label: Media Server's rules, in plain words;
    `taken()` gives names already in use (the databases), refused before OK."""
    def check(text: str) -> str | None:
        try:
            check_text(what, text)
        except HashlensError as refused:
            return f"The {what} cannot be used: {refused.description.split(': ', 1)[-1]}"
        if taken is not None and text in taken():
            return f"A database named '{text}' already exists."
        return None
    return check


def group_failures(failures: list[tuple[str, str]], groups_shown: int = 8, names_shown: int = 5) -> str:
    """One line per distinct reason, with how many entries it stopped and a few of their
    identifiers: a bulk edit refused 1,000 times the same way reads as one line, not 1,000."""
    groups: dict[str, list[str]] = {}
    for identifier, why in failures:
        # The same refusal names each entry: say 'this entry' so the reasons compare equal.
        groups.setdefault(why.replace(f"'{identifier}'", "this entry"), []).append(identifier)
    lines = []
    for why, identifiers in sorted(groups.items(), key=lambda g: -len(g[1]))[:groups_shown]:
        named = ", ".join(identifiers[:names_shown]) + (", …" if len(identifiers) > names_shown else "")
        count = f"{len(identifiers):,} entr{'y' if len(identifiers) == 1 else 'ies'}"
        lines.append(f"{count} ({named}): {why}")
    if len(groups) > groups_shown:
        lines.append(f"…and {len(groups) - groups_shown:,} other reasons.")
    return "\n".join(lines)


@dataclass
class WriteResult:
    """What one write job did: the ACI lines of the changes made, what failed, and the
    store's change token right after (so our own change is not reported as someone else's)."""

    lines: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (identifier, why refused)
    token: int | None = None
    summary: str | None = None
    details: str | None = None
    select_database: str | None = None
    stopped: HashlensError | None = None  # a store-wide error ended the batch early
    remaining: list = field(default_factory=list)  # rows not yet tried when it stopped


class EntryActions(QObject):
    """QActions for every change the window can make, enabled by selection and store mode."""

    changed = Signal(object)  # WriteResult, after any write finished
    busy_changed = Signal(bool)

    def __init__(self, workers, prompter, presenter, parent=None):
        super().__init__(parent)
        self.workers = workers
        self.prompter = prompter
        self.presenter = presenter
        self.parent_widget = parent
        self.store = None
        self.read_only_reason: str | None = None
        self.database: str | None = None
        self.rows: list[EntryRow] = []
        self.meta_key: str | None = None
        self.databases: list[str] = []
        self.entry_counts: dict[str, int] = {}  # database name → entries, from the picker
        # Where the current database is mirrored from (words), or None for a local one: a
        # mirror's entries change only by a pull, so its write actions are off.
        self.mirror: str | None = None
        self._running = 0
        self.task = None  # the long job in the progress dialog (ui.workers.Task)

        a = self._action
        self.train_files = a("Train images…", "train", self.on_train_files, "Train one or more image files into this database")
        self.train_folder = a("Train a folder…", "train", self.on_train_folder, "Train every image in a folder (and its subfolders)")
        self.add_metadata = a("Add metadata…", "meta-add", self.on_add_metadata, names.ADD_IMAGE_HASH_METADATA)
        self.update_metadata = a("Edit metadata value…", "rename", self.on_update_metadata, names.UPDATE_IMAGE_HASH_METADATA)
        self.remove_metadata = a("Remove metadata…", "meta-remove", self.on_remove_metadata, names.REMOVE_IMAGE_HASH_METADATA)
        self.relabel = a("Relabel image…", "tag", self.on_relabel, names.RELABEL_IMAGE_HASH_IMAGE)
        self.rename = a("Rename identifier…", "rename", self.on_rename, names.RENAME_IMAGE_HASH)
        self.move = a("Move to database…", "move", self.on_move, names.MOVE_IMAGE_HASH)
        self.null_image = a("Remove image data…", "image-off", self.on_null_image,
                            f"{names.NULL_IMAGE_HASH_IMAGE_DATA}: delete the stored training image, keep the hash")
        self.remove = a("Remove entry…", "delete", self.on_remove, f"{names.REMOVE_IMAGE_HASH}: remove the hash, its image and metadata")
        self.remove.setShortcut(QKeySequence.StandardKey.Delete)
        self.new_database = a("New database…", "database-add", self.on_new_database, names.CREATE_IMAGE_HASH_DATABASE)
        self.rename_database = a("Rename database…", "rename", self.on_rename_database, names.RENAME_IMAGE_HASH_DATABASE)
        self.remove_database = a("Remove database…", "delete", self.on_remove_database, names.REMOVE_IMAGE_HASH_DATABASE)
        self.create_sample = a("Create sample database…", "sample", self.on_create_sample,
                               "Generate a database of sample images to explore Hashlens")
        self.update_enabled()

    def _action(self, text: str, icon_name: str, slot, tip: str) -> QAction:
        action = QAction(text, self)
        set_icon(action, icon_name)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    @property
    def all_actions(self) -> list[QAction]:
        return [self.train_files, self.train_folder, self.add_metadata, self.update_metadata, self.remove_metadata,
                self.relabel, self.rename, self.move, self.null_image, self.remove, self.new_database,
                self.rename_database, self.remove_database, self.create_sample]

    # -- context from the window ---------------------------------------------------------------

    def set_store(self, store, read_only_reason: str | None) -> None:
        self.store = store
        self.read_only_reason = read_only_reason
        self.update_enabled()

    def set_database(self, database: str | None, databases: list[str]) -> None:
        self.database = database
        self.databases = list(databases)
        self.update_enabled()

    def set_mirror(self, source: str | None) -> None:
        """The current database is a mirror of `source` (words), or None when it is local."""
        self.mirror = source
        self.update_enabled()

    def set_rows(self, rows: list[EntryRow]) -> None:
        self.rows = list(rows)
        self.update_enabled()

    def set_meta_key(self, key: str | None) -> None:
        self.meta_key = key
        self.update_enabled()

    def update_enabled(self) -> None:
        writable = self.store is not None and self.read_only_reason is None
        has_db = writable and self.database is not None and self.mirror is None
        # On a mirror the entry actions stay on: each is staged, to push later (issue 12).
        entries = writable and self.database is not None
        some = entries and bool(self.rows)
        one = entries and len(self.rows) == 1
        for action in (self.train_files, self.train_folder, self.rename_database, self.remove_database):
            action.setEnabled(has_db)
        for action in (self.add_metadata, self.relabel, self.null_image, self.remove, self.update_metadata,
                       self.remove_metadata):
            action.setEnabled(some)
        self.move.setEnabled(some and len(self.databases) > 1)
        self.rename.setEnabled(one)
        self.new_database.setEnabled(writable)
        self.create_sample.setEnabled(writable)
        why = f"Disabled: the store is read-only ({self.read_only_reason})." if self.read_only_reason else None
        mirror_why = (f"Disabled: '{self.database}' is a mirror of {self.mirror}; its entries can be changed (each "
                      "change is staged, to push), but not the database itself." if self.mirror else None)
        for action in self.all_actions:
            base = action.statusTip()
            action.setToolTip(why if why and not writable else
                              mirror_why if mirror_why and not action.isEnabled() else base)

    @property
    def busy(self) -> bool:
        return self._running > 0

    # -- running -------------------------------------------------------------------------------

    def _submit(self, work, *, title: str, progress: tuple[str, str] | None = None, retry=None, then=None,
                again=None) -> None:
        """Run `work(store) -> WriteResult` on the write lane, then report and emit
        `changed`. With `progress=(title, text)` it is `work(store, progress, stop)` in the
        job service's progress dialog, whose Cancel sets `stop`. With `again(reason)`, a
        one-entry edit the store refused asks its question again with what was typed and
        the reason, instead of losing the typing to an error message."""
        store = self.store
        if store is None:
            return

        def with_token(result: WriteResult) -> WriteResult:
            try:
                result.token = store.change_token()
            except HashlensError:
                result.token = None
            return result

        def done(result: WriteResult):
            self._finished()
            self.changed.emit(result)
            if result.stopped is not None:
                self._stopped(title, result, retry)
            elif result.failures and again is not None and len(result.failures) == 1 and not result.lines:
                again(result.failures[0][1])
            elif result.failures:
                total = len(result.lines) + len(result.failures)
                self.presenter.show_error(
                    HashlensError(Failure.PARAM_INVALID,
                                  f"{title}: {len(result.failures):,} of {total:,} could not be changed.\n\n"
                                  + group_failures(result.failures)),
                    title,
                )
            elif result.details:
                self.prompter.info(title, result.summary or title, result.details)
            elif result.summary:
                self.presenter.notify(result.summary)
            if then is not None and result.stopped is None and not result.failures:
                then()

        def failed(error: HashlensError):
            self._finished()
            self.changed.emit(WriteResult())
            if error.failure is Failure.STORE_BUSY and progress is None and self.prompter.retry(
                    title, f"{error.description}\n\nRetry now?"):
                self._submit(work, title=title)
                return
            if again is not None and error.failure not in STORE_WIDE:
                again(plain_words(error.description))
                return
            self.presenter.show_error(error, title)

        self._running += 1
        self.busy_changed.emit(True)
        if progress is None:
            self.workers.submit("write", lambda: with_token(work(store)), on_done=done, on_error=failed, store=store,
                                owner=self)
            return
        dialog_title, text = progress
        self.task = self.workers.run_task(
            "write", lambda report, stop: with_token(work(store, report, stop)), title=dialog_title, text=text,
            parent=self.parent_widget, store=store, on_done=done, on_error=failed, owner=self)

    @property
    def progress_dialog(self):
        """The progress dialog of the long job running now, if any."""
        return self.task.dialog if self.task is not None else None

    def _finished(self) -> None:
        self._running = max(0, self._running - 1)
        if self._running == 0:
            self.busy_changed.emit(False)

    def _each(self, title: str, rows: list[EntryRow], change, again=None) -> None:
        """Apply `change(store, row) -> ACI line` to each row in its own transaction, so
        one refusal never undoes the others; refusals are reported together."""
        database = self.database

        def work(store):
            result = WriteResult()
            for i, row in enumerate(rows):
                try:
                    result.lines.append(change(store, database, row))
                except HashlensError as exc:
                    if exc.failure in STORE_WIDE:
                        # The store itself refused (busy, lost, full): the other rows
                        # would fail the same way, so stop and offer to retry them.
                        result.stopped, result.remaining = exc, list(rows[i:])
                        break
                    result.failures.append((row.identifier, plain_words(exc.description)))
            n = len(result.lines)
            result.summary = f"{title}: {n} entr{'y' if n == 1 else 'ies'} changed."
            return result

        self._submit(work, title=title, retry=lambda remaining: self._each(title, remaining, change),
                     again=again if len(rows) == 1 else None)

    def _stopped(self, title: str, result: WriteResult, retry) -> None:
        error = result.stopped
        done = f"{len(result.lines):,} changed before it stopped; " if result.lines else ""
        left = f"{len(result.remaining):,} not changed yet."
        if retry is not None and error.failure is Failure.STORE_BUSY and self.prompter.retry(
                title, f"{error.description}\n\n{done}{left} Retry them now?"):
            retry(result.remaining)
            return
        self.presenter.show_error(HashlensError(error.failure, f"{error.description}\n\n{done}{left}"), title)

    def _targets(self) -> list[EntryRow]:
        return list(self.rows) if self.database is not None else []

    def _what(self, rows: list[EntryRow]) -> str:
        return f"'{rows[0].identifier}'" if len(rows) == 1 else f"{len(rows):,} selected entries"

    # -- entry actions -----------------------------------------------------------------------------

    def on_add_metadata(self, typed: tuple[str, str] = ("", ""), reason: str | None = None) -> None:
        rows = self._targets()
        if not rows:
            return
        answer = self.prompter.key_value(f"Add metadata to {self._what(rows)}", *typed,
                                         **({"reason": reason} if reason else {}))
        if answer is None:
            return
        key, value = answer

        def change(store, db, row):
            actions.add_metadata(store, db, row.identifier, key, value)
            return aci_line(names.ADD_IMAGE_HASH_METADATA, database=db, identifier=row.identifier, key=key, value=value)

        self._each("Add metadata", rows, change, again=lambda why: self.on_add_metadata(answer, why))

    def on_update_metadata(self, typed: tuple[str, str] | None = None, reason: str | None = None) -> None:
        rows = self._targets()
        if not rows:
            return
        key = typed[0] if typed else self.meta_key or self._ask_key(rows, "Edit metadata value")
        if key is None:
            return
        current = typed[1] if typed else dict(rows[0].metadata or ()).get(key, "")
        answer = self.prompter.key_value(f"Edit metadata of {self._what(rows)}", key, current, key_editable=False,
                                         **({"reason": reason} if reason else {}))
        if answer is None:
            return
        _key, value = answer

        def change(store, db, row):
            actions.update_metadata(store, db, row.identifier, key, value)
            return aci_line(names.UPDATE_IMAGE_HASH_METADATA, database=db, identifier=row.identifier, key=key, newvalue=value)

        self._each("Edit metadata", rows, change, again=lambda why: self.on_update_metadata((key, value), why))

    def on_remove_metadata(self) -> None:
        rows = self._targets()
        if not rows:
            return
        key = self.meta_key or self._ask_key(rows, "Remove metadata")
        if key is None:
            return
        if not self.prompter.confirm("Remove metadata", f"Remove the metadata key '{key}' from {self._what(rows)}?",
                                     "Remove"):
            return

        def change(store, db, row):
            actions.remove_metadata(store, db, row.identifier, key)
            return aci_line(names.REMOVE_IMAGE_HASH_METADATA, database=db, identifier=row.identifier, key=key)

        self._each("Remove metadata", rows, change)

    def _ask_key(self, rows: list[EntryRow], title: str) -> str | None:
        keys = sorted({k for r in rows for k, _ in (r.metadata or ())})
        if not keys:
            self.presenter.notify("The selected entries have no metadata.")
            return None
        return self.prompter.item(title, "Metadata key", keys)

    def on_relabel(self, typed: str | None = None, reason: str | None = None) -> None:
        rows = self._targets()
        if not rows:
            return
        label = self.prompter.text("Relabel image", f"New label for {self._what(rows)}:",
                                   typed if typed is not None else rows[0].label if len(rows) == 1 else "",
                                   check=text_check("label"), **({"reason": reason} if reason else {}))
        if label is None:
            return

        def change(store, db, row):
            actions.relabel_image(store, db, row.identifier, row.label, label)
            return aci_line(names.RELABEL_IMAGE_HASH_IMAGE, database=db, identifier=row.identifier,
                            imagelabel=row.label, newimagelabel=label)

        self._each("Relabel", rows, change, again=lambda why: self.on_relabel(label, why))

    def on_rename(self, typed: str | None = None, reason: str | None = None) -> None:
        rows = self._targets()
        if len(rows) != 1:
            return
        row = rows[0]
        new = self.prompter.text("Rename identifier", f"New identifier for '{row.identifier}':",
                                 row.identifier if typed is None else typed, check=text_check("identifier"),
                                 **({"reason": reason} if reason else {}))
        if new is None or new == row.identifier:
            return

        def change(store, db, r):
            actions.rename_image_hash(store, db, r.identifier, new)
            return aci_line(names.RENAME_IMAGE_HASH, database=db, identifier=r.identifier, newidentifier=new)

        self._each("Rename", rows, change, again=lambda why: self.on_rename(new, why))

    def on_move(self) -> None:
        rows = self._targets()
        targets = [d for d in self.databases if d != self.database]
        if not rows or not targets:
            return
        target = self.prompter.item("Move to database", f"Move {self._what(rows)} to:", targets)
        if target is None:
            return

        def change(store, db, row):
            actions.move_image_hash(store, db, row.identifier, target)
            return aci_line(names.MOVE_IMAGE_HASH, database=db, identifier=row.identifier, newdatabase=target)

        self._each("Move", rows, change)

    def on_null_image(self) -> None:
        rows = [r for r in self._targets() if r.has_image_data] or self._targets()
        if not rows:
            return
        if not self.prompter.confirm(
            "Remove image data",
            f"Delete the stored training image of {self._what(rows)}?\n\nThe hash, its label and metadata "
            "stay; the image cannot be recovered (NullImageHashImageData).",
            "Remove image data",
        ):
            return

        def change(store, db, row):
            actions.null_image_data(store, db, row.identifier)
            return aci_line(names.NULL_IMAGE_HASH_IMAGE_DATA, database=db, identifier=row.identifier)

        self._each("Remove image data", rows, change)

    def on_remove(self) -> None:
        rows = self._targets()
        if not rows:
            return
        if not self.prompter.confirm(
            "Remove entry",
            f"Remove {self._what(rows)} from '{self.database}'?\n\nThe hash, its image and its metadata are "
            "deleted (RemoveImageHash). This cannot be undone.",
            "Remove",
        ):
            return

        def change(store, db, row):
            actions.remove_image_hash(store, db, row.identifier)
            return aci_line(names.REMOVE_IMAGE_HASH, database=db, identifier=row.identifier)

        self._each("Remove", rows, change)

    # -- databases ---------------------------------------------------------------------------------

    def on_new_database(self, typed: str = "", reason: str | None = None) -> str | None:
        name = self.prompter.text("New database", "Name of the new image-hash database:", typed,
                                  check=text_check("database name", lambda: self.databases),
                                  **({"reason": reason} if reason else {}))
        if not name:
            return None

        def work(store):
            actions.create_database(store, name)
            return WriteResult([aci_line(names.CREATE_IMAGE_HASH_DATABASE, database=name)],
                               summary=f"Created database '{name}'.", select_database=name)

        self._submit(work, title="New database", again=lambda why: self.on_new_database(name, why))
        return name

    def on_train_folder_into_new_database(self) -> None:
        """The empty store's "Train a folder": a new database named after the folder, then training."""
        folder = self.prompter.folder()
        if not folder or self.store is None:
            return
        name = self.prompter.text("Train a folder", "Name of the new database:", Path(folder).name or "Images")
        if not name:
            return

        def work(store):
            actions.create_database(store, name)
            return WriteResult([aci_line(names.CREATE_IMAGE_HASH_DATABASE, database=name)], select_database=name)

        self._submit(work, title="New database", then=lambda: self.train_paths([folder], database=name))

    def on_rename_database(self, typed: str | None = None, reason: str | None = None) -> None:
        old = self.database
        if old is None:
            return
        new = self.prompter.text("Rename database", f"New name for '{old}':", old if typed is None else typed,
                                 check=text_check("database name", lambda: [d for d in self.databases if d != old]),
                                 **({"reason": reason} if reason else {}))
        if not new or new == old:
            return

        def work(store):
            actions.rename_database(store, old, new)
            return WriteResult([aci_line(names.RENAME_IMAGE_HASH_DATABASE, database=old, newdatabase=new)],
                               summary=f"Renamed '{old}' to '{new}'.", select_database=new)

        self._submit(work, title="Rename database", again=lambda why: self.on_rename_database(new, why))

    def on_remove_database(self) -> None:
        name = self.database
        if name is None:
            return
        count = self.entry_counts.get(name)
        what = f"its {count:,} {'entry' if count == 1 else 'entries'}" if count is not None else "all its image hashes"
        if not self.prompter.confirm(
            "Remove database",
            f"Remove the database '{name}' with {what}, their images and metadata?\n\n"
            "This cannot be undone (RemoveImageHashDatabase).",
            "Remove database",
        ):
            return

        def work(store):
            removed = actions.remove_database(store, name)
            return WriteResult([aci_line(names.REMOVE_IMAGE_HASH_DATABASE, database=name)],
                               summary=f"Removed database '{name}' ({removed:,} entries).")

        self._submit(work, title="Remove database")

    # -- long jobs ---------------------------------------------------------------------------------

    def on_train_files(self) -> None:
        files = self.prompter.image_files()
        if files:
            self.train_paths(files)

    def on_train_folder(self) -> None:
        folder = self.prompter.folder()
        if folder:
            self.train_paths([folder])

    def train_paths(self, paths: list[str], database: str | None = None) -> None:
        """Train files and folders into the database with progress and Cancel."""
        database = database or self.database
        if database is None or self.store is None:
            return

        # The person's Cancel (`stop`) stops training between files; the job still ends
        # normally and reports what was added.
        def work(store, progress, stop):
            report = actions.train_files(store, database, paths, progress=progress, cancelled=stop)
            result = WriteResult()
            for path, identifier in report.added:
                result.lines.append(aci_line(names.TRAIN_IMAGE_HASH, database=database, imagepath=path,
                                             identifier=identifier, imagelabel=Path(path).stem))
            added, refused, skipped = len(report.added), len(report.refused), len(report.skipped)
            result.summary = (f"Trained {added:,} image{'s' if added != 1 else ''} into '{database}'"
                              + (f"; {refused:,} refused" if refused else "")
                              + (f"; {skipped:,} skipped (not image files)" if skipped else "")
                              + ("; cancelled" if report.cancelled else "") + ".")
            if refused or skipped:
                # Each file once, with its reason (the reason itself no longer repeats the path).
                result.details = "\n".join(f"{verb} {p}: {why}" for verb, p, why in report.notes())
            return result

        self._submit(work, title="Training", progress=("Training images", f"Training images into '{database}'…"))

    def on_create_sample(self) -> None:
        if self.store is None:
            return
        name = self.prompter.text("Create sample database", "Name of the sample database:", _free_name(self.databases))
        if not name:
            return

        def work(store, progress, stop):
            generate_sample(store, name, SAMPLE_COUNT, progress=progress, cancelled=stop)
            return WriteResult(summary=f"Created the sample database '{name}'.", select_database=name)

        self._submit(work, title="Sample data", progress=("Sample data", f"Creating the sample database '{name}'…"))


def _free_name(existing: list[str], base: str = "Sample") -> str:
    name, n = base, 1
    while name in existing:
        n += 1
        name = f"{base} {n}"
    return name
