"""The Pending changes pane and the Push… dialog against the stand-in: nothing sent before the confirmation, each change sent once, progress and a report."""

from __future__ import annotations

import copy

import pytest

from app.mediaserver.client import MediaServerClient
from app.mediaserver_codec import names
from app.mediaserver.mirror import pull_mirror
from app.mediaserver import push as push_module
from app.store import Store
from tests.app.test_push import ACTIONS, DB, applied_writes, data, expected_writes, initial, intended, stage
from tests.standin import HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture
from ui.pending_changes import PendingChangesPane
from ui.push_dialog import PushDialog


@pytest.fixture
def staged(standin, tmp_path):
    databases = {DB: initial(), "other": [HashEntry("o1", "other 1", True, [])]}
    original = copy.deepcopy(databases)
    server = standin(databases)
    with Store.open(f"sqlite:///{tmp_path / 'push.db'}") as store:
        pull_mirror(store, MediaServerClient(server.url), DB)
        stage(store, ACTIONS)
        yield server, store, original


def test_the_pane_lists_the_changes_in_order_and_asks_to_push_or_discard(qtbot, staged):
    server, store, _ = staged
    pane = PendingChangesPane()
    qtbot.addWidget(pane)
    assert not pane.push_button.isEnabled()
    pane.set_changes(DB, push_module.outstanding(store, DB), server.url)
    assert pane.list.topLevelItemCount() == len(ACTIONS)
    assert pane.list.topLevelItem(0).text(1) == "relabel 'id000' in 'db' from 'label 0' to 'cat'"
    assert pane.list.topLevelItem(0).text(2) == "staged"
    assert f"{len(ACTIONS)} staged change(s) of 'db'" in pane.summary.text() and server.url in pane.summary.text()
    with qtbot.waitSignal(pane.push_requested) as pushed:
        pane.push_button.click()
    assert pushed.args == [DB]
    with qtbot.waitSignal(pane.discard_requested) as discarded:
        pane.discard_last_button.click()
    assert discarded.args == [DB, 1]
    pane.resize(900, 300)
    pane.grab().save("/tmp/shots/pending_pane.png")
    pane.set_changes(None, [])
    assert "not a mirror" in pane.summary.text() and not pane.push_button.isEnabled()


def test_push_dialog_sends_nothing_until_confirmed_then_each_change_once(qtbot, staged):
    server, store, original = staged
    dialog = PushDialog(store, DB, server.url, push_module.outstanding(store, DB))
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert text.startswith("1. relabel 'id000' in 'db' from 'label 0' to 'cat'")
    assert text.count("action=") == len(ACTIONS)
    assert dialog.force_button.isHidden()
    dialog.grab().save("/tmp/shots/push_confirm.png")
    assert server.applied == []
    with qtbot.waitSignal(dialog.pushed, timeout=60_000) as done:
        dialog.push_button.click()
    qtbot.waitUntil(lambda: not dialog.busy)
    report = done.args[0]
    assert report.ok and "Every change is on the server." == dialog.heading.text()
    assert f"{len(ACTIONS)} change(s) confirmed, 0 failed." in dialog.text.toPlainText()
    assert data(server.databases) == data(intended(original))
    assert applied_writes(server) == expected_writes()
    dialog.grab().save("/tmp/shots/push_done.png")


def test_push_dialog_refused_because_someone_else_changed_offers_push_anyway(qtbot, staged):
    server, store, _ = staged
    server.databases[DB][0].label = "someone else's"
    dialog = PushDialog(store, DB, server.url, push_module.outstanding(store, DB))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.pushed, timeout=60_000):
        dialog.push_button.click()
    qtbot.waitUntil(lambda: not dialog.busy)
    assert "Someone else changed 1 entry" in dialog.heading.text() and server.applied == []
    assert not dialog.force_button.isHidden()
    dialog.grab().save("/tmp/shots/push_refused.png")
    with qtbot.waitSignal(dialog.pushed, timeout=60_000) as done:
        dialog.force_button.click()
    qtbot.waitUntil(lambda: not dialog.busy)
    # The relabel of id000 is refused by the server (its label is no longer 'label 0'): the push stops there.
    report = done.args[0]
    assert not report.ok and "The push stopped" in dialog.heading.text()
    assert "FAILED  relabel 'id000'" in dialog.text.toPlainText()


def test_the_window_stages_edits_on_a_mirror_counts_them_in_the_picker_and_pushes_them(qtbot, make_window, standin,
                                                                                       tmp_path, monkeypatch):
    from app.services import actions
    from tests.ui.conftest import wait_idle
    from ui.models.database_model import PENDING_ROLE
    from ui.push_dialog import PushDialog as Dialog

    server = standin({"Cats": [HashEntry(f"cat-{i:03d}", f"cat {i}", True, [("n", str(i))]) for i in range(20)]})
    url = f"sqlite:///{tmp_path / 'window.db'}"
    with Store.open(url) as store:
        store.create_database("Local")
        pull_mirror(store, MediaServerClient(server.url), "Cats")
        actions.relabel_image(store, "Cats", "cat-001", "cat 1", "kitten")
        actions.update_metadata(store, "Cats", "cat-002", "n", "two")
    window = make_window(url)
    model = window.database_panel.model
    assert model.data(model.index(model.row_of("Cats")), PENDING_ROLE) == 2
    assert model.data(model.index(model.row_of("Local")), PENDING_ROLE) == 0
    window.select_database("Cats")
    qtbot.waitUntil(lambda: window.filter_panel.database == "Cats")
    wait_idle(qtbot, window)
    pane = window.pending_pane
    assert pane.mirror == "Cats" and pane.list.topLevelItemCount() == 2 and not window.pending_dock.isHidden()
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: bool(window.entry_actions.rows))
    assert window.entry_actions.relabel.isEnabled() and not window.entry_actions.rename_database.isEnabled()
    window.grab().save("/tmp/shots/window_pending.png")

    def run_at_once(dialog):
        # The modal dialog's loop, replaced: confirm at once and wait for the push.
        dialog.push_button.click()
        try:
            qtbot.waitUntil(lambda: not dialog.busy and dialog.report is not None, timeout=20_000)
        except Exception:
            raise AssertionError(dialog.heading.text() + " | busy=" + str(dialog.busy))
        return 1

    monkeypatch.setattr(Dialog, "exec", run_at_once)
    with qtbot.waitSignal(pane.push_requested):
        pane.push_button.click()
    qtbot.waitUntil(lambda: pane.list.topLevelItemCount() == 0, timeout=60_000)
    assert model.data(model.index(model.row_of("Cats")), PENDING_ROLE) == 0
    assert [e.label for e in server.entries("Cats")][:2] == ["cat 0", "kitten"]
    assert [a for a, _ in server.applied] == [names.RELABEL_IMAGE_HASH_IMAGE, names.UPDATE_IMAGE_HASH_METADATA]
    assert any(line.startswith("# pushed to ") for line in window.action_log.lines)


def test_one_refresh_shows_the_staged_changes_of_a_mirror_made_elsewhere(qtbot, make_window, standin, tmp_path):
    """Another process pulls a mirror and stages a change: the first F5 counts it in the
    picker (the databases the window knew had no mirror, so it had not read any)."""
    from app.services import actions
    from tests.ui.conftest import wait_idle
    from ui.models.database_model import PENDING_ROLE

    server = standin({"Cats": [HashEntry(f"cat-{i:03d}", f"cat {i}", True, []) for i in range(5)]})
    url = f"sqlite:///{tmp_path / 'window.db'}"
    with Store.open(url) as store:
        store.create_database("Local")
    window = make_window(url)
    wait_idle(qtbot, window)
    with Store.open(url) as other:
        pull_mirror(other, MediaServerClient(server.url), "Cats")
        actions.relabel_image(other, "Cats", "cat-001", "cat 1", "kitten")
    window.refresh()
    model = window.database_panel.model
    qtbot.waitUntil(lambda: model.row_of("Cats") >= 0)
    wait_idle(qtbot, window)
    assert model.data(model.index(model.row_of("Cats")), PENDING_ROLE) == 1
