"""Fixtures for the window tests: offscreen Qt, QSettings in tmp_path, a browse store."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import random  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.domain import NewEntry  # noqa: E402
from app.services import actions  # noqa: E402
from app.store import Store  # noqa: E402
from tests.conftest import make_image  # noqa: E402

ANIMALS = 130  # more than one page of 100
WITH_IMAGES = 40
AWKWARD = ["a,comma", "with space ", "café ☕", 'quote"inside']
BROKEN = "broken-blob"


@pytest.fixture(autouse=True)
def _settings_in_tmp(qapp, tmp_path):
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("HashlensTests")
    QCoreApplication.setApplicationName("Hashlens")
    yield


@pytest.fixture(autouse=True)
def message_boxes(monkeypatch):
    """Modal boxes would block offscreen: record their calls instead (pytest-qt's advice)."""
    calls: list[tuple[str, str, str]] = []

    def recorder(kind):
        def box(parent, title, text, *args, **kwargs):
            calls.append((kind, title, text))
            return QMessageBox.StandardButton.Ok

        return staticmethod(box)

    for kind in ("warning", "critical", "information", "question", "about"):
        monkeypatch.setattr(QMessageBox, kind, recorder(kind))
    return calls


def build_browse_store(url: str) -> None:
    """Animals: 130 entries (40 with images, the rest without), metadata on some,
    awkward identifiers and one stored blob that is not an image. Plants: 3. Empty: 0."""
    store = Store.open(url)
    rnd = random.Random(3)
    actions.create_database(store, "Animals")
    actions.create_database(store, "Plants")
    actions.create_database(store, "Empty")
    kinds = ["cat", "dog", "bird"]
    for i in range(ANIMALS):
        ident = f"a{i:03d}"
        label = f"{kinds[i % 3]}-{i:03d}"
        meta = []
        if i % 5 == 0:
            meta.append(("colour", ["red", "green", "blue"][i % 3]))
        if i % 10 == 0:
            meta.append(("size", "big"))
        if i < WITH_IMAGES:
            actions.train_image(store, "Animals", data=make_image(i), identifier=ident, label=label, metadata=meta)
        else:
            entry = actions.prepare_entry(None, identifier=ident, label=label, metadata=meta,
                                          phash=rnd.getrandbits(64))
            actions.add_entry(store, "Animals", entry)
    for ident in AWKWARD:
        actions.train_image(store, "Animals", data=make_image(len(ident) + 500), identifier=ident, label="awkward")
    with store.writing():
        # A stored blob no decoder accepts: the image pane must say so, not crash.
        store.add_entry("Animals", NewEntry(BROKEN, "broken", 0x0F0F0F0F0F0F0F0F, b"\x89PNG\r\n\x1a\nnot really",
                                            "PNG", 10, 10, None))
    for i in range(3):
        actions.train_image(store, "Plants", data=make_image(900 + i), identifier=f"p{i}", label=f"fern-{i}")
    store.close()


@pytest.fixture(scope="session")
def browse_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "browse.db"
    build_browse_store("sqlite:///" + str(path))
    return path


@pytest.fixture
def browse_url(browse_template, tmp_path):
    """A fresh copy of the browse store for each test (building it takes a second)."""
    target = tmp_path / "browse.db"
    shutil.copy(browse_template, target)
    return "sqlite:///" + str(target)


ANIMALS_TOTAL = ANIMALS + len(AWKWARD) + 1


def wait_idle(qtbot, window, timeout: int = 5000) -> None:
    """Until the page on screen answers the latest request and nothing is loading."""
    model = window.model if hasattr(window, "model") else window
    qtbot.waitUntil(lambda: model.query is not None and model.page is not None and not model.loading
                    and model.page.query == model.query, timeout=timeout)


@pytest.fixture
def make_window(qtbot, monkeypatch):
    """Build MainWindow instances; each is shut down and checked for leftover threads."""
    from ui.main_window import MainWindow

    windows = []

    def make(url: str | None = None, *, read_only: bool = False, force_read_only: bool = False,
             poll_ms: int = 60_000, wait: bool = True, create: bool = True):
        window = MainWindow(force_read_only=force_read_only, poll_ms=poll_ms)
        # "Create a new store there?" is answered with `create`; the paths asked about are kept.
        window.create_questions = []
        monkeypatch.setattr(window.prompter, "create_store",
                            lambda path: window.create_questions.append(path) or create)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if url is not None:
            window.open_store(url, read_only=read_only)
            if wait:
                qtbot.waitUntil(lambda: window.session.store is not None, timeout=5000)
                qtbot.waitUntil(lambda: window.filter_panel.database is not None
                                or "no image-hash databases" in window.empty.title.text(), timeout=5000)
                if window.filter_panel.database is not None:
                    wait_idle(qtbot, window)
        if wait and window.details is None:
            # The detail panes come after the first rows are painted (issue 15): the tests
            # drive the whole window, as a person sees it a moment after it opens.
            with qtbot.waitSignal(window.finished_building, timeout=5000):
                pass
        return window

    yield make
    for window in windows:
        window.shutdown()
        assert window.workers.active_threads == 0, "a worker thread was left running"


@pytest.fixture
def window(make_window, browse_url):
    """The main window over the browse store, showing the first database (Animals)."""
    w = make_window(browse_url)
    assert w.filter_panel.database == "Animals"
    return w


def pytest_collection_modifyitems(config, items):
    # A modal dialog left un-patched would block the event loop where pytest-timeout's
    # signal cannot reach it: the thread method ends such a test (and the run) instead of
    # hanging CI.
    for item in items:
        if "tests/ui/" in str(item.fspath).replace("\\", "/") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(120, method="thread"))
