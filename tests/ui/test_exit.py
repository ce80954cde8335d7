"""A program that drives the window and ends without shutting it down still exits: the
worker lanes are stopped at exit instead of Qt waiting for them forever."""

import os
import subprocess
import sys
import textwrap


def test_exit_without_shutdown_does_not_hang(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from PySide6.QtCore import QSettings
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, {str(tmp_path)!r})
        from app.domain import NewEntry
        from app.services import actions
        from app.store import Store
        url = "sqlite:///{tmp_path / 's.db'}"
        with Store.open(url) as store:
            actions.create_database(store, "D")
            with store.writing():
                for i in range(300):
                    store.add_entry("D", NewEntry(f"e{{i}}", "l", i, None, None, None, None, None))
        from PySide6.QtWidgets import QApplication
        from ui.app import start
        app, window = start([], url)
        deadline = time.monotonic() + 20
        while window.model.rowCount() == 0 and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        print("rows", window.model.rowCount(), flush=True)
        raise SystemExit(3)  # no shutdown(), as a crashing script would
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 3, result.stderr
    assert "rows" in result.stdout and "rows 0" not in result.stdout
