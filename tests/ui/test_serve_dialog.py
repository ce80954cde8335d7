"""Tools ▸ Serve this store over ACI…: the dialog starts a real server off the GUI
thread, shows its URL, refuses changes when read-only, reports a port in use, stops."""

from __future__ import annotations

import socket
import urllib.request
import xml.etree.ElementTree as ET

from ui.serve_dialog import ServeDialog


def fetch(url: str) -> ET.Element:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return ET.fromstring(reply.read())


def test_start_shows_the_url_and_stop_ends_it(qtbot, browse_url):
    dialog = ServeDialog(browse_url)
    qtbot.addWidget(dialog)
    dialog.port_spin.setValue(0)
    with qtbot.waitSignal(dialog.started, timeout=30000) as started:
        dialog.start_server()
    url = started.args[0]
    assert url.startswith("http://127.0.0.1:") and url in dialog.url_label.text()
    assert not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    assert fetch(url + "action=ListImageHashDatabases").findtext("response") == "SUCCESS"
    with qtbot.waitSignal(dialog.stopped, timeout=30000):
        dialog.stop_server()
    assert dialog.server is None and dialog.start_button.isEnabled()
    assert dialog.url_label.text() == "Not running."


def test_read_only_session_serves_read_only(qtbot, browse_url):
    dialog = ServeDialog(browse_url, read_only=True)
    qtbot.addWidget(dialog)
    assert dialog.read_only_check.isChecked() and not dialog.read_only_check.isEnabled()
    dialog.port_spin.setValue(0)
    with qtbot.waitSignal(dialog.started, timeout=30000) as started:
        dialog.start_server()
    root = fetch(started.args[0] + "action=CreateImageHashDatabase&database=New")
    assert root.findtext("responsedata/error/errorcode") == "ERRORREADONLY"
    dialog.shutdown()
    assert dialog.server is None


def test_a_port_in_use_is_reported(qtbot, browse_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        dialog = ServeDialog(browse_url)
        qtbot.addWidget(dialog)
        dialog.port_spin.setValue(taken.getsockname()[1])
        with qtbot.waitSignal(dialog.failed, timeout=30000) as failed:
            dialog.start_server()
    assert "Cannot listen" in failed.args[0] and failed.args[0] in dialog.url_label.text()
    assert dialog.server is None and dialog.start_button.isEnabled()


def test_window_offers_the_dialog(window, qtbot):
    assert window.serve_action.text() == "&Serve this store over ACI…"
    window.serve_action.trigger()
    assert window.serve_dialog.isVisible() and window.serve_dialog.store_url == window.session.url
    window.serve_dialog.close()
