"""The window and store files: it asks before creating one, says why a store is read-only
in the one policy's words, and keeps a recent list that can be cleared and drops the gone."""

from __future__ import annotations

import sqlite3

from app.sources import SCHEMA_VERSION


def test_a_missing_store_file_is_created_only_after_asking(qtbot, make_window, tmp_path):
    target = tmp_path / "typo" / "new.db"
    window = make_window("sqlite:///" + str(target), create=False, wait=False)
    assert window.create_questions == [target]
    assert not target.exists() and not target.parent.exists()  # nothing made, not even the folder
    assert window.session.store is None and "No store was created" in window.empty.text.text()

    window.prompter.create_store = lambda path: True
    window.open_store("sqlite:///" + str(target))
    qtbot.waitUntil(lambda: window.session.store is not None, timeout=5000)
    assert target.exists()


def test_new_store_creates_and_opens_without_a_second_question(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    target = tmp_path / "fresh.db"
    monkeypatch.setattr(window.prompter, "new_store_file", lambda: str(target))
    window.new_store_action.trigger()
    qtbot.waitUntil(lambda: window.session.store is not None, timeout=5000)
    assert target.exists() and window.create_questions == []


def test_an_older_store_says_older_and_how_to_migrate(qtbot, make_window, browse_url):
    path = browse_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE hl_store_info SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION - 1),))
    db.close()
    window = make_window(browse_url)
    reason = window.session.read_only_reason
    assert "older schema" in reason and "hashlens migrate" in reason and "newer" not in reason
    assert window.read_only_banner.isVisible() and "older schema" in window.read_only_banner.text.text()


def test_recent_stores_drop_missing_files_and_can_be_cleared(qtbot, make_window, browse_url, tmp_path):
    window = make_window(browse_url)
    gone = tmp_path / "gone.db"
    window.settings.q.setValue("stores/recent", [browse_url, "sqlite:///" + str(gone), "postgresql://u@h/x"])
    window._rebuild_recent_menu()
    entries = [a.text() for a in window.recent_menu.actions() if a.text() and not a.isSeparator()]
    assert entries == [browse_url, "postgresql://u@h/x", "&Clear recent stores"]
    window.clear_recent_action.trigger()
    assert window.settings.recent_stores() == []
    assert not window.recent_menu.isEnabled()
