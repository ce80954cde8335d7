"""The window over PostgreSQL and MariaDB stores, and the GUI entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.services import actions
from app.store import Store
from tests.conftest import make_image
from tests.ui.conftest import wait_idle


def _small_store(url: str) -> None:
    store = Store.open(url)
    actions.create_database(store, "Server")
    actions.create_database(store, "Other")
    for i in range(120):
        actions.train_image(store, "Server", data=make_image(i), identifier=f"s{i:03d}", label=f"label {i % 4}",
                            metadata=[("n", str(i))] if i % 2 else [])
    store.close()


@pytest.mark.server
@pytest.mark.parametrize("backend", ["pg_url", "mysql_url"])
def test_browse_filter_and_change_a_server_store(qtbot, make_window, request, monkeypatch, backend):
    url = request.getfixturevalue(backend)
    _small_store(url)
    window = make_window(url)
    assert window.database_panel.names() == ["Other", "Server"]
    assert window.filter_panel.database == "Other"
    window.select_database("Server")
    qtbot.waitUntil(lambda: window.model.query.database == "Server", timeout=5000)
    wait_idle(qtbot, window)
    assert window.pager.indicator.text() == "entries 1–100 of 120"
    window.model.next_page()
    wait_idle(qtbot, window)
    assert window.model.row(0).identifier == "s100"
    window.filter_panel.label_text.setText("LABEL 1")  # contains ignores ASCII case
    window.filter_panel.flush()
    qtbot.waitUntil(lambda: bool(window.model.query.filters), timeout=5000)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.model.count is not None and window.model.count.exact, timeout=5000)
    assert window.model.count.value == 30
    window.table.select_row(0)
    qtbot.waitUntil(lambda: window.image_pane.showing_image, timeout=5000)
    monkeypatch.setattr(window.prompter, "confirm", lambda *a, **k: True)
    with qtbot.waitSignal(window.entry_actions.changed, timeout=10000):
        window.entry_actions.remove.trigger()
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.model.count is not None and window.model.count.value == 29, timeout=5000)
    assert window.action_log.lines[-1] == "action=RemoveImageHash&database=Server&identifier=s001"


@pytest.mark.server
def test_read_only_server_store(qtbot, make_window, pg_url):
    _small_store(pg_url)
    window = make_window(pg_url, read_only=True)
    window.table.select_row(0)
    assert not any(a.isEnabled() for a in window.entry_actions.all_actions)
    assert window.read_only_banner.isVisible()


def test_gui_main_parses_its_flags(monkeypatch):
    import ui.app
    import ui.main

    seen = {}
    monkeypatch.setattr(ui.app, "run", lambda argv, store_url=None, read_only=False:
                        seen.update(argv=argv, url=store_url, ro=read_only) or 0)
    assert ui.main.main(["--store", "sqlite:///x.db", "--read-only", "-style", "fusion"]) == 0
    assert seen == {"argv": ["-style", "fusion"], "url": "sqlite:///x.db", "ro": True}


def test_hashlens_without_subcommand_starts_the_window(monkeypatch):
    import ui.app
    import ui.main

    seen = {}
    monkeypatch.setattr(ui.app, "run", lambda argv, store_url=None, read_only=False:
                        seen.update(url=store_url, ro=read_only) or 0)
    assert ui.main.cli(["--store", "sqlite:///y.db", "--read-only"]) == 0
    assert seen == {"url": "sqlite:///y.db", "ro": True}


def test_command_line_through_ui_main_loads_no_qt(tmp_path):
    code = ("import sys, ui.main; rc = ui.main.cli(['--store', sys.argv[1], 'db', 'list']); "
            "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt was imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "sqlite:///" + str(tmp_path / "s.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 1, 2), out.stderr
    assert "Qt was imported" not in out.stderr


def test_build_window_shows_a_bad_url_as_a_message(qtbot, message_boxes):
    from ui.app import build_window

    window = build_window("sqlite://two-slashes.db")
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(message_boxes), timeout=3000)
    assert "three slashes" in message_boxes[-1][2]
    window.shutdown()
    assert window.workers.active_threads == 0
