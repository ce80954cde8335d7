"""Every change the window makes: through app.services.actions, reflected in the table at
once, confirmed when destructive, logged as the ACI line, and disabled when read-only."""

from __future__ import annotations

import pytest

from app.store import Store
from tests.conftest import make_image
from tests.ui.conftest import ANIMALS_TOTAL, wait_idle


class Answers:
    """Scripted replies for the window's Prompter."""

    def __init__(self, monkeypatch, prompter):
        self.asked: list[tuple[str, tuple]] = []
        self.replies: dict[str, list] = {}
        for name in ("text", "item", "key_value", "confirm", "image_files", "folder", "info", "integer"):
            monkeypatch.setattr(prompter, name, self._answer(name))

    def _answer(self, name):
        def answer(*args, **kwargs):
            self.asked.append((name, args))
            queue = self.replies.get(name)
            if not queue:
                return False if name == "confirm" else None
            return queue.pop(0)
        return answer

    def set(self, **replies):
        for name, values in replies.items():
            self.replies[name] = list(values)


@pytest.fixture
def answers(window, monkeypatch):
    return Answers(monkeypatch, window.prompter)


def changed(qtbot, window, trigger):
    """Trigger an action and wait for its write to finish and the page to reload."""
    with qtbot.waitSignal(window.entry_actions.changed, timeout=10000) as blocker:
        trigger()
    wait_idle(qtbot, window)
    return blocker.args[0]


def select(window, *rows):
    window.table.select_row(rows[0])
    for r in rows[1:]:
        window.table.select_row(r, extend=True)


def test_add_update_remove_metadata(qtbot, window, answers):
    select(window, 1)
    assert window.model.row(1).meta_count == 0
    answers.set(key_value=[("source", "a&b=c d")])
    changed(qtbot, window, window.entry_actions.add_metadata.trigger)
    assert window.model.row(1).meta_count == 1
    assert window.metadata_pane.model.items() == [("source", "a&b=c d")]
    assert window.action_log.lines[-1] == \
        "action=AddImageHashMetadata&database=Animals&identifier=a001&key=source&value=a%26b%3Dc%20d"

    window.metadata_pane.select_key("source")
    answers.set(key_value=[("source", "new")])
    changed(qtbot, window, window.entry_actions.update_metadata.trigger)
    assert window.model.row(1).metadata == (("source", "new"),)
    assert window.action_log.lines[-1].startswith("action=UpdateImageHashMetadata&") \
        and window.action_log.lines[-1].endswith("&key=source&newvalue=new")

    # Destructive: nothing happens when the person cancels the confirmation.
    answers.set(confirm=[False])
    window.entry_actions.remove_metadata.trigger()
    assert window.model.row(1).meta_count == 1
    answers.set(confirm=[True])
    changed(qtbot, window, window.entry_actions.remove_metadata.trigger)
    assert window.model.row(1).meta_count == 0
    assert window.action_log.lines[-1] == "action=RemoveImageHashMetadata&database=Animals&identifier=a001&key=source"


def test_metadata_on_several_rows_reports_refusals(qtbot, window, answers, message_boxes):
    select(window, 0, 1)  # a000 already has 'colour'
    answers.set(key_value=[("colour", "violet")])
    result = changed(qtbot, window, window.entry_actions.add_metadata.trigger)
    assert len(result.lines) == 1 and len(result.failures) == 1
    assert "a000" in message_boxes[-1][2] and "already exists" in message_boxes[-1][2]
    # In the window's words, not ACI's: no 'key=colour', no action name.
    assert "The metadata key 'colour' already exists" in message_boxes[-1][2]
    assert "key=" not in message_boxes[-1][2] and "use Edit metadata value" in message_boxes[-1][2]
    assert window.model.row(1).metadata == (("colour", "violet"),)


def test_relabel_and_rename(qtbot, window, answers):
    select(window, 2)
    answers.set(text=["fresh label"])
    changed(qtbot, window, window.entry_actions.relabel.trigger)
    assert window.model.row(2).label == "fresh label"
    assert window.action_log.lines[-1] == ("action=RelabelImageHashImage&database=Animals&identifier=a002"
                                           "&imagelabel=bird-002&newimagelabel=fresh%20label")
    assert window.image_pane.label.text() == "fresh label"  # the pane follows the refreshed row
    answers.set(text=["renamed/ID"])
    changed(qtbot, window, window.entry_actions.rename.trigger)
    assert window.model.row(2).identifier == "renamed/ID"
    assert window.action_log.lines[-1] == \
        "action=RenameImageHash&database=Animals&identifier=a002&newidentifier=renamed%2FID"


def test_move_to_another_database(qtbot, window, answers):
    select(window, 3)
    answers.set(item=["Plants"])
    changed(qtbot, window, window.entry_actions.move.trigger)
    assert window.model.row(3).identifier == "a004"
    assert window.model.count.value == ANIMALS_TOTAL - 1
    assert window.action_log.lines[-1] == "action=MoveImageHash&database=Animals&identifier=a003&newdatabase=Plants"
    qtbot.waitUntil(lambda: dict((d.name, d.entry_count) for d in window.database_panel.model.databases())["Plants"] == 4,
                    timeout=3000)


def test_null_image_data(qtbot, window, answers):
    select(window, 4)
    answers.set(confirm=[True])
    changed(qtbot, window, window.entry_actions.null_image.trigger)
    row = window.model.row(4)
    assert not row.has_image_data and row.identifier == "a004"
    assert "Image data removed" in window.image_pane.message_text
    assert window.action_log.lines[-1] == "action=NullImageHashImageData&database=Animals&identifier=a004"
    assert answers.asked[-1][0] == "confirm"


def test_remove_entries(qtbot, window, answers):
    select(window, 0, 1, 2)
    answers.set(confirm=[False])
    window.entry_actions.remove.trigger()
    assert window.model.count.value == ANIMALS_TOTAL
    answers.set(confirm=[True])
    changed(qtbot, window, window.entry_actions.remove.trigger)
    assert window.model.row(0).identifier == "a003"
    assert window.model.count.value == ANIMALS_TOTAL - 3
    assert window.action_log.lines[-3:] == [
        f"action=RemoveImageHash&database=Animals&identifier=a00{i}" for i in range(3)]


def test_database_actions(qtbot, window, answers):
    answers.set(text=["Birds & bees"])
    changed(qtbot, window, window.entry_actions.new_database.trigger)
    qtbot.waitUntil(lambda: window.filter_panel.database == "Birds & bees", timeout=3000)
    assert window.action_log.lines[-1] == "action=CreateImageHashDatabase&database=Birds%20%26%20bees"
    answers.set(text=["Bees"])
    changed(qtbot, window, window.entry_actions.rename_database.trigger)
    qtbot.waitUntil(lambda: window.filter_panel.database == "Bees", timeout=3000)
    answers.set(confirm=[True])
    changed(qtbot, window, window.entry_actions.remove_database.trigger)
    qtbot.waitUntil(lambda: "Bees" not in window.database_panel.names(), timeout=3000)
    assert window.action_log.lines[-1] == "action=RemoveImageHashDatabase&database=Bees"
    assert window.filter_panel.database in window.database_panel.names()


def test_train_files_with_progress(qtbot, window, answers, tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f"new {i}.png"
        path.write_bytes(make_image(700 + i))
        files.append(str(path))
    (tmp_path / "junk.png").write_bytes(b"not an image")
    answers.set(image_files=[files + [str(tmp_path / "junk.png")]])
    result = changed(qtbot, window, window.entry_actions.train_files.trigger)
    assert len(result.lines) == 3 and "1 refused" in result.summary
    assert window.model.count.value == ANIMALS_TOTAL + 3
    assert result.lines[0].startswith("action=TrainImageHash&database=Animals&imagepath=")
    assert "imagelabel=new%200" in result.lines[0]
    assert window.entry_actions.progress_dialog is None  # closed when done
    assert any(kind == "info" for kind, _ in answers.asked)  # the refusal report


def test_training_a_folder_lists_each_refused_and_skipped_file_once(qtbot, window, answers, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "good.png").write_bytes(make_image(801))
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("hello")
    answers.set(folder=[str(folder)])
    result = changed(qtbot, window, window.entry_actions.train_folder.trigger)
    assert len(result.lines) == 1 and "1 refused" in result.summary and "1 skipped" in result.summary
    details = result.details.splitlines()
    assert len(details) == 2
    assert details[0].startswith(f"refused {folder / 'broken.png'}: ")
    assert details[1].startswith(f"skipped {folder / 'notes.txt'}: ")
    for line in details:
        assert line.count(str(folder)) == 1, line  # each path once


def test_train_folder_can_be_cancelled(qtbot, window, answers, tmp_path, monkeypatch):
    import threading

    from PySide6.QtWidgets import QDialogButtonBox

    from app.services import actions

    for i in range(5):
        (tmp_path / f"img{i}.png").write_bytes(make_image(800 + i))
    real = actions.train_files
    started, proceed = threading.Event(), threading.Event()

    def train_when_told(store, database, paths, **kwargs):
        started.set()
        proceed.wait(5)  # training starts only after the person pressed Cancel
        return real(store, database, paths, **kwargs)

    monkeypatch.setattr(actions, "train_files", train_when_told)
    answers.set(folder=[str(tmp_path)])
    with qtbot.waitSignal(window.entry_actions.changed, timeout=10000) as blocker:
        window.entry_actions.train_folder.trigger()
        qtbot.waitUntil(started.is_set, timeout=3000)
        dialog = window.entry_actions.progress_dialog
        assert dialog is not None and dialog.isVisible()
        dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
        proceed.set()
    result = blocker.args[0]
    assert "cancelled" in result.summary
    assert result.lines == []  # cancelled before the first file: nothing trained
    wait_idle(qtbot, window)
    assert window.model.count.value == ANIMALS_TOTAL


def test_read_only_store_disables_every_change(qtbot, make_window, browse_url):
    window = make_window(browse_url, read_only=True)
    window.table.select_row(0)
    ea = window.entry_actions
    assert all(not a.isEnabled() for a in ea.all_actions)
    assert window.read_only_banner.isVisible()
    assert "Read-only" in window.read_only_banner.text.text()
    assert "read-only" in ea.remove.toolTip()
    assert window.windowTitle().endswith("(read-only) — Hashlens")


def test_read_only_flag_is_forced(qtbot, make_window, browse_url):
    window = make_window(browse_url, force_read_only=True)
    window.table.select_row(0)
    assert not window.entry_actions.remove.isEnabled()
    assert "--read-only" in window.read_only_banner.text.text()
    assert not window.read_only_banner.button.isVisible()  # no "open for writing" offered


def test_read_only_empty_store_offers_no_writes(qtbot, make_window, tmp_path):
    url = "sqlite:///" + str(tmp_path / "empty.db")
    Store.open(url).close()
    window = make_window(url, read_only=True)
    assert window.stack.currentWidget() is window.empty
    assert not window.empty.sample_button.isVisible() and not window.empty.new_button.isVisible()


def test_actions_follow_the_selection(qtbot, window):
    ea = window.entry_actions
    window.table.clearSelection()
    assert not ea.remove.isEnabled() and ea.train_files.isEnabled() and ea.new_database.isEnabled()
    select(window, 0, 1)
    assert ea.remove.isEnabled() and not ea.rename.isEnabled()
    select(window, 0)
    assert ea.rename.isEnabled() and ea.move.isEnabled()


def test_action_log_view(qtbot, window, answers):
    assert not window.action_log.isVisible()
    window.log_action.trigger()
    assert window.action_log.isVisible()
    select(window, 5)
    answers.set(text=["x"])
    changed(qtbot, window, window.entry_actions.relabel.trigger)
    assert "action=RelabelImageHashImage" in window.action_log.text.toPlainText()


def test_hidden_panels_are_made_when_first_shown_and_then_work(qtbot, window, answers, make_window, browse_url):
    # Issue 15: the first rows do not wait for panes nobody sees.
    assert window._changes_view is None and window._pending_pane is None
    assert window.action_log.text is None and window.action_log.widget() is None
    assert window.changes_dock.widget() is None and window.pending_dock.widget() is None
    # A change made before the log is first shown is in it when it shows.
    select(window, 5)
    answers.set(text=["x"])
    changed(qtbot, window, window.entry_actions.relabel.trigger)
    assert window.action_log.text is None
    window.log_action.trigger()
    assert window.action_log.isVisible() and window.action_log.widget() is not None
    assert "action=RelabelImageHashImage" in window.action_log.text.toPlainText()
    # The Changes view and the Pending pane follow the store and database shown before they were made.
    window.changes_action.trigger()
    view = window._changes_view
    assert view is not None and window.changes_dock.widget() is view and view.isVisible()
    assert view.store is window.session.store and view.database == "Animals" and view.latest is None
    window.pending_action.trigger()
    pane = window._pending_pane
    assert pane is not None and window.pending_dock.widget() is pane and pane.isVisible()
    assert pane.mirror is None and "not a mirror" in pane.summary.text()
    # Shown docks are remembered: the next window restores them, and makes their panes at once.
    window.save_settings()
    again = make_window(browse_url)
    assert again.changes_dock.isVisible() and again.pending_dock.isVisible() and again.action_log.isVisible()
    assert again._changes_view is not None and again._pending_pane is not None and again.action_log.text is not None
    assert again.changes_view.store is again.session.store and again.changes_view.database == "Animals"


def test_write_error_is_shown_and_nothing_is_lost(qtbot, window, answers, message_boxes):
    select(window, 0)
    answers.set(text=["a001"])  # an identifier that exists
    shown = len(message_boxes)
    changed(qtbot, window, window.entry_actions.rename.trigger)
    # The refusal comes back as the question again, holding what was typed (its reason is
    # checked in tests/ui/test_first_hour.py); no message box takes the typing away.
    qtbot.waitUntil(lambda: len([a for a in answers.asked if a[0] == "text"]) == 2, timeout=5000)
    assert [a[1][2] for a in answers.asked if a[0] == "text"] == ["a000", "a001"]
    assert len(message_boxes) == shown
    assert window.model.row(0).identifier == "a000"


def test_busy_store_offers_retry_and_retry_works(qtbot, window, answers, monkeypatch, browse_url):
    """Another program holds the write lock: a clear message with Retry, nothing lost,
    and Retry succeeds once the lock is gone (reliability C2, GUI variant)."""
    import sqlite3

    from app.store import dialect

    # The write lane connects on first use: give it a short busy timeout.
    monkeypatch.setattr(dialect, "BUSY_TIMEOUT_MS", 200)
    path = browse_url[len("sqlite:///"):]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    asked = []

    def retry(title, text):
        asked.append(text)
        blocker.execute("COMMIT")  # the other program lets go
        return True

    monkeypatch.setattr(window.prompter, "retry", retry)
    select(window, 0, 1)
    answers.set(text=["relabelled"])
    window.entry_actions.relabel.trigger()
    qtbot.waitUntil(lambda: window.model.row(1).label == "relabelled" and not window.model.loading, timeout=15000)
    assert window.model.row(0).label == "relabelled"
    assert asked and "busy" in asked[0] and "Retry" in asked[0] and "Traceback" not in asked[0]
    assert [line.split("&")[2] for line in window.action_log.lines[-2:]] == ["identifier=a000", "identifier=a001"]
    blocker.close()
