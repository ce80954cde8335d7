"""A long randomized session in the real window (issue 10 item 8: a crash on Run audit after
a long session). Seeded, so a failure replays: switch databases, filter, page, select, act
(relabel, rename, metadata, move, null image, remove), train, export, import, audit and
cancel, in a few hundred steps; no crash, no error dialog that was not expected, and the
store intact at the end. The CI size runs in well under a minute; `-m soak` runs a long one."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from app.domain import Filter, FilterOp, ListingQuery
from app.sources import open_source
from tests.conftest import make_image
from tests.ui.conftest import wait_idle
from ui.audit_view import AuditWindow
from ui.errors import dialog_events
from ui.export_dialog import ExportDialog
from ui.import_dialog import ImportDialog

WAIT = 30_000
EXPECTED_DIALOGS = {("information", "Import finished")}


def expected(dialog: tuple[str, str, str]) -> bool:
    """A dialog the walk may cause on purpose: an import's report, or a move refused by the
    rules because the identifier already exists in the target (moves are chosen at random)."""
    kind, title, text = dialog
    return (kind, title) in EXPECTED_DIALOGS or (kind == "warning" and title == "Move" and "already exists" in text)


class Driver:
    """Drives one window step by step; every step waits for its own outcome (signals and
    conditions, never time) and leaves the window idle."""

    def __init__(self, qtbot, window, rng: random.Random, folder: Path, monkeypatch):
        self.qtbot, self.window, self.rng, self.folder = qtbot, window, rng, folder
        self.step_no = 0
        self.log: list[str] = []
        self.done: dict[str, int] = {}  # outcomes that really happened, by kind
        self.dialogs: list[tuple[str, str, str]] = []
        dialog_events().shown.connect(lambda *args: self.dialogs.append(args))
        self.images = folder / "images"
        self.images.mkdir()
        for i in range(4):
            (self.images / f"img{i}.png").write_bytes(make_image(7000 + i))
        self._answers: dict[str, object] = {}
        prompter = window.prompter
        for name in ("text", "item", "key_value", "confirm", "folder", "image_files", "info", "retry", "integer"):
            monkeypatch.setattr(prompter, name, self._answer(name))

    def count(self, what: str) -> None:
        self.done[what] = self.done.get(what, 0) + 1

    def _answer(self, name):
        def answer(*args, **kwargs):
            if name == "item":  # a list to choose from: the move target or a metadata key
                items = args[2]
                wanted = self._answers.get("item")
                return wanted if wanted in items else items[0]
            return self._answers.get(name, False if name in ("confirm", "retry") else None)
        return answer

    # -- helpers ---------------------------------------------------------------------------

    @property
    def store(self):
        return self.window.session.store

    def settle(self) -> None:
        w = self.window
        self.qtbot.waitUntil(lambda: not w.entry_actions.busy, timeout=WAIT)
        if w.model.query is not None:
            wait_idle(self.qtbot, w, timeout=WAIT)

    def rows(self) -> int:
        return self.window.model.rowCount()

    def select_some(self, many: bool = False) -> bool:
        n = self.rows()
        if n == 0:
            return False
        first = self.rng.randrange(n)
        self.window.table.select_row(first)
        if many:
            for _ in range(self.rng.randint(1, 3)):
                self.window.table.select_row(self.rng.randrange(n), extend=True)
        return bool(self.window.table.selected_rows())

    def act(self, action, **answers) -> None:
        """Trigger an entry action with these prompt answers and wait for its write."""
        if not action.isEnabled():
            return
        self._answers = answers
        with self.qtbot.waitSignal(self.window.entry_actions.changed, timeout=WAIT) as blocker:
            action.trigger()
        self._answers = {}
        if blocker.args[0].lines:
            self.count("writes")

    # -- steps -----------------------------------------------------------------------------

    def switch_database(self) -> None:
        names = self.window.database_panel.names()
        if names:
            self.window.select_database(self.rng.choice(names))

    def filter(self) -> None:
        database = self.window.filter_panel.database
        if database is None:
            return
        choice = self.rng.choice([
            (Filter(FilterOp.LABEL_CONTAINS, self.rng.choice(["cat", "dog", "label", "zzz", "é"])),),
            (Filter(FilterOp.HAS_IMAGE_DATA, self.rng.choice([True, False])),),
            (Filter(FilterOp.META_PRESENT, key="colour"),),
            (),
        ])
        self.window.filter_panel.set_query(ListingQuery(database, filters=choice))

    def similar(self) -> None:
        if self.select_some():
            self.window.find_similar_action.trigger()

    def page(self) -> None:
        model = self.window.model
        self.rng.choice([model.next_page, model.previous_page, model.first_page, model.last_page,
                         lambda: model.go_to(self.rng.randint(1, 200))])()

    def page_size(self) -> None:
        self.window.model.set_page_size(self.rng.choice([50, 100]))

    def select(self) -> None:
        self.select_some(many=self.rng.random() < 0.5)

    def relabel(self) -> None:
        if self.select_some(many=True):
            self.act(self.window.entry_actions.relabel, text=f"label {self.step_no}")

    def rename(self) -> None:
        if self.select_some():
            self.act(self.window.entry_actions.rename, text=f"renamed-{self.step_no}")

    def add_metadata(self) -> None:
        if self.select_some(many=True):
            self.act(self.window.entry_actions.add_metadata, key_value=(f"k{self.step_no}", "v,\"x\" é"))

    def remove_metadata(self) -> None:
        if self.select_some() and self.window.table.selected_rows()[0].metadata:
            self.window.entry_actions.set_meta_key(None)
            self.act(self.window.entry_actions.remove_metadata, confirm=True)

    def move(self) -> None:
        names = [n for n in self.window.database_panel.names() if n != self.window.filter_panel.database]
        if names and self.select_some():
            self.act(self.window.entry_actions.move, item=self.rng.choice(names))

    def null_image(self) -> None:
        if self.select_some():
            self.act(self.window.entry_actions.null_image, confirm=True)

    def remove(self) -> None:
        if self.select_some():
            self.act(self.window.entry_actions.remove, confirm=True)

    def train(self) -> None:
        # Training the same files again refuses them (reported in a details box, not an error).
        self.act(self.window.entry_actions.train_folder, folder=str(self.images))

    def export(self, cancel: bool = False, formats=("csv", "json", "xml", "ndjson")) -> Path | None:
        w = self.window
        if self.store is None or w.model.query is None:
            return None
        fmt = self.rng.choice(formats)
        target = self.folder / f"export-{self.step_no}.{fmt}"
        dialog = ExportDialog(self.store, w.model.query, None, w.model.rows, w, workers=w.workers)
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
        dialog.path_edit.setText(str(target))
        dialog.export_button.click()
        if cancel and dialog.task is not None:
            dialog.task.request_cancel()
        self.qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT)
        exported = dialog.exported_path
        self.count("exports" if exported else "exports cancelled")
        dialog.close()
        dialog.deleteLater()
        return Path(exported) if exported else None

    def import_(self) -> None:
        path = self.export(formats=("csv", "json", "ndjson"))  # XML (Media Server's answer) has no pHash
        if path is None:
            return
        w = self.window
        dialog = ImportDialog(self.store, None, w, workers=w.workers, databases=w.database_panel.names())
        dialog.path_edit.setText(str(path))
        dialog.database_combo.setCurrentText(f"Copy {self.step_no}")
        imported = []
        dialog.imported.connect(lambda *args: imported.append(args))
        dialog.import_button.click()
        self.qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT)
        self.count("imports" if imported else "imports refused")
        dialog.close()
        dialog.deleteLater()
        w.refresh()

    def audit(self) -> None:
        w = self.window
        if self.store is None:
            return
        audit = AuditWindow(self.store, w.filter_panel.database, w, workers=w.workers)
        audit.show_filter.connect(w.show_query)
        ended = []
        for signal in (audit.finished, audit.failed, audit.cancelled):
            signal.connect(lambda *args, s=signal: ended.append(s))
        audit.show()
        audit.run()
        if self.rng.random() < 0.3:
            audit.cancel()
        self.qtbot.waitUntil(lambda: bool(ended), timeout=WAIT)
        assert ended[0] is not audit.failed, audit.status.text()
        self.count("audits" if ended[0] is audit.finished else "audits cancelled")
        if ended[0] is audit.finished and audit.groups_tree.topLevelItemCount():
            item = audit.groups_tree.topLevelItem(self.rng.randrange(audit.groups_tree.topLevelItemCount()))
            with self.qtbot.waitSignal(audit.thumbnails_loaded, timeout=WAIT):
                audit.groups_tree.itemClicked.emit(item, 0)
        audit.close()
        audit.deleteLater()

    def cancel_loading(self) -> None:
        self.window.model.next_page()
        self.window._stop_loading()

    def refresh(self) -> None:
        self.window.refresh()

    STEPS = {
        "switch_database": 8, "filter": 8, "similar": 3, "page": 10, "page_size": 2, "select": 8, "relabel": 5,
        "rename": 4, "add_metadata": 5, "remove_metadata": 3, "move": 4, "null_image": 3, "remove": 3, "train": 2,
        "export": 3, "cancel_export": 2, "import_": 2, "audit": 3, "cancel_loading": 3, "refresh": 3,
    }

    def cancel_export(self) -> None:
        self.export(cancel=True)

    def run(self, steps: int) -> None:
        names, weights = zip(*self.STEPS.items())
        for self.step_no in range(steps):
            name = self.rng.choices(names, weights)[0]
            self.log.append(name)
            getattr(self, name)()
            self.settle()
            unexpected = [d for d in self.dialogs if not expected(d)]
            assert not unexpected, f"step {self.step_no} ({name}) after {self.log[-8:]}: {unexpected}"


def _check_store_intact(url: str) -> None:
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store = open_source(url, read_only=True)
    try:
        for info in store.list_databases():
            query = ListingQuery(info.name)
            listed = sum(len(batch) for batch in store.iter_listing(query))
            assert info.entry_count == listed == store.count(query).value, info.name
            if listed:  # position marks: start=N is the N-th entry of the whole listing
                whole = [r.identifier for batch in store.iter_listing(query) for r in batch]
                n = (listed + 1) // 2
                page = store.list_page(ListingQuery(info.name, start=n, maxresults=1))
                assert [r.identifier for r in page.rows] == [whole[n - 1]]
    finally:
        store.close()


def _session(qtbot, make_window, browse_url, tmp_path, monkeypatch, seed: int, steps: int) -> None:
    window = make_window(browse_url, poll_ms=200)
    driver = Driver(qtbot, window, random.Random(seed), tmp_path, monkeypatch)
    try:
        driver.run(steps)
    finally:
        dialog_events().shown.disconnect()
    assert window.shutdown() and window.workers.active_threads == 0
    _check_store_intact(browse_url)
    assert len(set(driver.log)) >= 15  # the walk really visited most kinds of step
    print(f"seed {seed}: {steps} steps, outcomes {driver.done}")
    # Each kind of change really happened, not only its attempt.
    assert {"writes", "exports", "imports", "audits"} <= set(driver.done), driver.done


@pytest.mark.parametrize("seed", [20261130])
def test_long_randomized_session(qtbot, make_window, browse_url, tmp_path, monkeypatch, seed):
    _session(qtbot, make_window, browse_url, tmp_path, monkeypatch, seed, steps=300)


@pytest.mark.soak
@pytest.mark.timeout(3600, method="thread")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_randomized_session_soak(qtbot, make_window, browse_url, tmp_path, monkeypatch, seed):
    _session(qtbot, make_window, browse_url, tmp_path, monkeypatch, seed, steps=3000)
