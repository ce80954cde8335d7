"""A mirror in the main window: the picker's server mark and tooltip, write actions off, Pull mirror again, and the Changes view opening the filtered table."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.domain import SnapshotInfo
from app.mediaserver.client import MediaServerClient
from app.mediaserver import mirror
from app.store import Store
from tests.standin import Fault, HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture
from tests.ui.conftest import wait_idle
from ui.changes_view import ChangesView
from ui.models.database_model import MIRROR_ROLE
from ui.workers import Workers


def cats(n):
    return [HashEntry(f"cat-{i:03d}", f"cat {i}", i % 5 != 0, [("source", "camera"), ("n", str(i))])
            for i in range(n)]


@pytest.fixture
def mirror_url(tmp_path, standin):
    """A store with a local database 'Local' and the mirror 'Cats' of the stand-in's 'Cats', pulled once."""
    server = standin({"Cats": cats(30)})
    url = f"sqlite:///{tmp_path / 'mirrors.db'}"
    with Store.open(url) as store:
        store.create_database("Local")
        mirror.pull_mirror(store, MediaServerClient(server.url), "Cats")
    return url, server


def change_server(server) -> None:
    db = server.databases["Cats"]
    db[3].label = "kitten"
    db[4].metadata = [("source", "phone"), ("n", "4")]
    db[6].has_image_data = False
    del db[7]
    db.append(HashEntry("cat-new", "new cat", True, [("source", "camera")]))


def pick(qtbot, window, name) -> None:
    window.select_database(name)
    qtbot.waitUntil(lambda: window.filter_panel.database == name)
    wait_idle(qtbot, window)


def test_the_picker_marks_a_mirror_and_its_write_actions_are_off(qtbot, make_window, mirror_url):
    url, server = mirror_url
    window = make_window(url)
    model = window.database_panel.model
    row = model.row_of("Cats")
    snap = model.data(model.index(row), MIRROR_ROLE)
    assert isinstance(snap, SnapshotInfo) and snap.number == 1 and snap.source.url == server.url
    tip = model.data(model.index(row), Qt.ItemDataRole.ToolTipRole)
    assert server.url in tip and "'Cats'" in tip and "Snapshot 1, as of " in tip
    assert model.data(model.index(model.row_of("Local")), MIRROR_ROLE) is None
    assert not model.data(model.index(model.row_of("Local")), Qt.ItemDataRole.DecorationRole).isNull()
    pick(qtbot, window, "Cats")
    assert window.model.rowCount() == 30
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: bool(window.entry_actions.rows))
    ea = window.entry_actions
    for action in (ea.rename_database, ea.remove_database, ea.train_files):
        assert not action.isEnabled(), action.text()
        assert "is a mirror of" in action.toolTip()
    # The entry actions stay on: on a mirror each is staged, to push (issue 12).
    for action in (ea.relabel, ea.add_metadata, ea.remove):
        assert action.isEnabled(), action.text()
    assert window.mirror_actions.pull_again.isEnabled() and ea.new_database.isEnabled()
    pick(qtbot, window, "Local")
    assert ea.rename_database.isEnabled() and not window.mirror_actions.pull_again.isEnabled()


def test_pull_again_makes_a_snapshot_and_the_changes_view_opens_the_filtered_table(qtbot, make_window, mirror_url):
    url, server = mirror_url
    window = make_window(url)
    pick(qtbot, window, "Cats")
    window.changes_dock.show()
    view = window.changes_view
    qtbot.waitUntil(lambda: "only snapshot 1" in view.summary.text(), timeout=10_000)
    change_server(server)
    with qtbot.waitSignal(window.mirror_actions.pulled, timeout=60_000):
        window.mirror_actions.pull_again.trigger()
    qtbot.waitUntil(lambda: view.changes is not None, timeout=20_000)
    assert "1 added, 1 removed, 3 changed" in view.summary.text()
    rows = [(f.kind, f.identifier, f.key, f.old, f.new) for f in view.changes.findings]
    assert rows == [
        ("relabelled", "cat-003", None, "cat 3", "kitten"),
        ("metadata changed", "cat-004", "source", "camera", "phone"),
        ("image data removed", "cat-006", None, "yes", "no"),
        ("removed", "cat-007", None, "cat 7", None),
        ("added", "cat-new", None, None, "new cat"),
    ]
    assert view.model.rowCount() == 5 and view.model.index(1, 3).data() == "camera"
    snap = window.database_panel.mirror_of("Cats")
    assert snap.number == 2 and window.model.count.value == 30
    assert "snapshot 2" in window.action_log.lines[-1]
    # Activating a finding shows that entry in the table.
    with qtbot.waitSignal(view.finding_activated):
        view.view.activated.emit(view.model.index(0, 0))
    qtbot.waitUntil(lambda: window.model.query.identifiers == ("cat-003",), timeout=5000)
    wait_idle(qtbot, window)
    assert [r.identifier for r in window.model.rows] == ["cat-003"] and window.model.rows[0].label == "kitten"


def test_a_failed_pull_again_keeps_the_previous_snapshot_and_says_so(qtbot, make_window, mirror_url, message_boxes):
    url, server = mirror_url
    window = make_window(url)
    pick(qtbot, window, "Cats")
    server.add_fault(Fault("error", at=1, times=None))
    with qtbot.waitSignal(window.mirror_actions.failed, timeout=60_000):
        window.mirror_actions.pull_again.trigger()
    qtbot.waitUntil(lambda: window.mirror_actions.pull_again.isEnabled())
    assert window.database_panel.mirror_of("Cats").number == 1 and window.model.count.value == 30
    assert any("previous snapshot is kept" in title or "previous snapshot is kept" in text
               for _, title, text in message_boxes) or "previous snapshot is kept" in window.statusBar().currentMessage()


def test_the_changes_view_on_its_own(qtbot, tmp_path, standin):
    server = standin({"Cats": cats(5)})
    url = f"sqlite:///{tmp_path / 'alone.db'}"
    store = Store.open(url)
    mirror.pull_mirror(store, MediaServerClient(server.url), "Cats")
    del server.databases["Cats"][0]
    report = mirror.pull_mirror(store, MediaServerClient(server.url), "Cats")
    store.create_database("Local")
    workers = Workers()
    view = ChangesView(workers)
    qtbot.addWidget(view)
    view.set_store(store)
    view.show_database("Cats", report.snapshot)  # hidden: nothing is computed yet
    assert view.changes is None
    view.show()
    qtbot.waitUntil(lambda: view.changes is not None, timeout=10_000)
    assert [(f.kind, f.identifier) for f in view.changes.findings] == [("removed", "cat-000")]
    with qtbot.waitSignal(view.finding_activated) as caught:
        view.view.activated.emit(view.model.index(0, 1))
    assert caught.args == ["Cats", "cat-000"]
    view.show_database("Local", None)
    assert "is a local database" in view.summary.text() and view.model.rowCount() == 0
    workers.shutdown()
    store.close()
