"""The Media Server mirrors dialog against the stand-in: pull, refresh, changes since the previous pull, remembered settings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.store import Store
from tests.standin import Fault, HashEntry
from tests.standin.fixture import standin  # noqa: F401 - the fixture
from ui.mirror_dialog import MirrorDialog, split_names


@pytest.fixture
def store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'mirrors.db'}") as opened:
        yield opened


def entries(n):
    return [HashEntry(f"cat-{i:03d}", f"cat {i}", i % 5 != 0, [("source", "camera"), ("n", str(i))])
            for i in range(n)]


def pulled_dialog(qtbot, store, server, names: str, count: int) -> MirrorDialog:
    """A dialog that has pulled `names` from `server` once."""
    dialog = MirrorDialog(store)
    qtbot.addWidget(dialog)
    dialog.url_combo.setCurrentText(server.url)
    dialog.databases_edit.setText(names)
    with qtbot.waitSignal(dialog.pulled, timeout=60_000):
        dialog.pull_button.click()
    qtbot.waitUntil(lambda: dialog.mirror_list.topLevelItemCount() == count and not dialog.busy)
    return dialog


def test_pull_refresh_and_the_changes_since_the_previous_pull(qtbot, store, standin):
    server = standin({"Cats": entries(40), "Dogs": entries(3)})
    dialog = pulled_dialog(qtbot, store, server, "Cats, Dogs", 2)
    assert [dialog.mirror_list.topLevelItem(i).text(0) for i in range(2)] == ["Cats", "Dogs"]
    assert dialog.mirror_list.topLevelItem(0).text(4) == "40"
    assert "Pulled 40 entries" in dialog.status.text()
    dialog.mirror_list.setCurrentItem(dialog.mirror_list.topLevelItem(0))
    assert "only snapshot 1" in dialog.changes_summary.text()

    server.databases["Cats"][3].label = "kitten"
    del server.databases["Cats"][7]
    server.databases["Cats"].append(HashEntry("cat-new", "new cat"))
    with qtbot.waitSignal(dialog.pulled, timeout=60_000):
        dialog.refresh_button.click()
    qtbot.waitUntil(lambda: not dialog.busy)
    assert dialog.selected_mirror() == "Cats"
    assert dialog.mirror_list.topLevelItem(0).text(2) == "2"
    assert "1 added, 1 removed, 1 changed" in dialog.changes_summary.text()
    lines = dialog.changes_view.toPlainText().splitlines()
    assert lines == ["~ cat-003: relabelled 'cat 3' -> 'kitten'", "- cat-007  (label 'cat 7')",
                     "+ cat-new  (label 'new cat')"]
    settings = QSettings()
    assert settings.value("mediaserver/urls", [], type=list) == [server.url]
    reopened = MirrorDialog(store)
    qtbot.addWidget(reopened)
    assert reopened.url_combo.currentText() == server.url and reopened.databases_edit.text() == "Cats, Dogs"


def test_a_failed_pull_says_why_and_keeps_the_previous_snapshot(qtbot, store, standin):
    server = standin({"Cats": entries(10)})
    dialog = pulled_dialog(qtbot, store, server, "Cats", 1)
    server.add_fault(Fault("malformed", times=None))
    dialog.pull_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and dialog.pull_button.isEnabled(), timeout=60_000)
    assert "not well-formed" in dialog.status.text() and "previous snapshot is kept" in dialog.status.text()
    assert dialog.mirror_list.topLevelItem(0).text(2) == "1"


def test_pulling_needs_an_address_and_names(qtbot, store):
    dialog = MirrorDialog(store)
    qtbot.addWidget(dialog)
    dialog.url_combo.setCurrentText("")
    dialog.databases_edit.setText("")
    dialog.pull_button.click()
    assert "Give the server's address" in dialog.status.text() and not dialog.busy
    dialog.url_combo.setCurrentText("ftp://x")
    dialog.databases_edit.setText("A")
    dialog.pull_button.click()
    assert "not http or https" in dialog.status.text()
    assert split_names(" a, b ,,c ") == ["a", "b", "c"]
