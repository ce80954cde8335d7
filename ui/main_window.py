"""The main window: builds the widgets, menus and toolbar, and wires their signals.

It holds no browsing logic of its own: the filter panel makes the request, the model
fetches and pages, the panes show, EntryActions changes the store and the Session
opens it and watches it. What remains here is layout and connections."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

import app
from app.domain import HashlensError, ListingQuery
from app.services import actions
from app.services.locations import missing_store_file
from ui.action_log import ActionLog
from ui.database_panel import DatabasePanel, section_title
from ui.empty_state import EmptyState
from ui.entry_actions import EntryActions, WriteResult
from ui.errors import ErrorPresenter
from ui.filter_panel import FilterPanel
from ui.icons import icon_size, refresh_icons, set_icon
from ui.mirror_actions import MirrorActions
from ui.models.listing_model import ListingModel, ListingSource, prepare
from ui.notice_bar import NoticeBar
from ui.pager import PagerBar
from ui.prompts import Prompter
from ui.record_table import RecordTable
from ui.session import POLL_MS, Session
from ui.settings import Settings
from ui.status_bar import StatusBar
from ui.store_dialog import OpenStoreDialog, url_for
from ui.theme import ThemeManager
from ui.workers import Workers

if TYPE_CHECKING:
    from ui.changes_view import ChangesView
    from ui.detail_pane import ImageStatusPane, MetadataPane
    from ui.pending_changes import PendingChangesPane

log = logging.getLogger("hashlens.ui")


class _AfterFirstPaint(QObject):
    """Calls `then()` on the event-loop turn after `widget` first paints when `ready()`."""

    def __init__(self, widget, ready, then):
        super().__init__(widget)
        self._ready, self._then = ready, then
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Paint and self._ready():
            obj.removeEventFilter(self)
            QTimer.singleShot(0, self._then)
        return False


class MainWindow(QMainWindow):
    finished_building = Signal()  # the parts made after the first rows are there (issue 15)

    def __init__(self, *, force_read_only: bool = False, theme: ThemeManager | None = None,
                 settings: Settings | None = None, poll_ms: int = POLL_MS, log_path: Path | None = None,
                 open_url: str | None = None, open_read_only: bool = False, open_reason: str | None = None):
        """With `open_url`, the store starts opening (and reading its first page, on a
        worker) before the rest of the window is built, unless the person must first be
        asked to create it; `opening_started` says whether it did."""
        super().__init__()
        self.setWindowTitle("Hashlens")
        self.setObjectName("hashlensMain")
        self.force_read_only = force_read_only
        self.settings = settings or Settings()
        self.theme = theme or ThemeManager(QApplication.instance(), self.settings.theme(), parent=self)
        self.workers = Workers(self)
        self.session = Session(self.workers, self, poll_ms=poll_ms)
        self.prompter = Prompter(self)
        self.status_bar = StatusBar(self)
        self.setStatusBar(self.status_bar)
        self.presenter = ErrorPresenter(self, self.status_bar.showMessage, log_path)
        self.workers.error.connect(self.presenter.show_error)
        self.presenter.verify = self.session.verify
        self._closed = False
        self._opening = False  # a store is being opened: the empty state shown is not the last word
        self.stopped_cleanly = True
        self._pending_database: str | None = None
        self._reference_row = None  # the last single selection: near results keep it selected
        self.model = ListingModel(None, self, page_size=self.settings.page_size())
        # Issue 15: the opening job runs while the widgets below are made; its answer is
        # handled once the event loop runs, when everything is built and wired.
        self.opening_started = open_url is not None and (
            self.force_read_only or open_read_only or missing_store_file(open_url) is None)
        if self.opening_started:
            self.open_store(open_url, read_only=open_read_only, reason=open_reason)
        self._build()
        self._build_menus()
        self._wire()
        self._restore()
        self._show_no_store()
        if self.opening_started:
            self._on_session_opening(open_url)  # emitted before the status bar was wired
        # The rest is made once the first rows are painted (or a first page without any), or
        # the empty state when no rows come (no store, an empty one, a failed open); or when
        # first needed.
        _AfterFirstPaint(self.table.viewport(), lambda: self.model.rowCount() or self.model.page is not None,
                         self.finish_building)
        _AfterFirstPaint(self.empty, lambda: not self._opening, self.finish_building)

    def finish_building(self) -> None:
        """Make what the first rows do not need (the detail panes), once; then
        `finished_building`. Runs after the first rows are painted (issue 15)."""
        if self._finished_building:
            return
        self._finished_building = True
        self._build_details()
        # Said once the layout has taken the panes in (the window's smallest size with them).
        QTimer.singleShot(0, self.finished_building.emit)

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.table = RecordTable(self.model)
        self.filter_panel = FilterPanel()
        self.pager = PagerBar(ListingModel.PAGE_SIZES, self.model.page_size)
        self.entry_actions = EntryActions(self.workers, self.prompter, self.presenter, self)
        self.action_log = ActionLog(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.action_log)
        self.action_log.hide()
        # Issue 15: the hidden panes are made when first shown or needed (see `pending_pane`,
        # `changes_view`); their docks exist from the start, named, so restoreState finds them.
        self._pending_pane: PendingChangesPane | None = None
        self._pending_shown: tuple | None = None  # set_changes's arguments, for a pane made later
        self.pending_dock = self._lazy_dock("Pending changes", "pendingChangesDock", lambda: self.pending_pane)
        self.mirror_actions = MirrorActions(self.workers, self)
        self._changes_view: ChangesView | None = None
        self.changes_dock = self._lazy_dock("Changes since the previous pull", "changesDock",
                                            lambda: self.changes_view)

        self.database_panel = DatabasePanel()

        sidebar = QWidget()
        sidebar.setObjectName("sidebar")
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(8, 8, 4, 8)
        side.addWidget(self.database_panel, 2)
        side.addSpacing(6)
        side.addWidget(section_title("Filter"))
        side.addWidget(self.filter_panel)
        side.addStretch(1)
        # No minimums below the panes' own: a pane squeezed under them overlapped and cut
        # its rows (issue 14). The window's minimum is their sum, which fits a 1024×600
        # screen; the side panes can still be dragged shut.

        self.description = QLabel()
        self.description.setObjectName("filterDescription")
        self.description.setWordWrap(True)
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        center = QWidget()
        middle = QVBoxLayout(center)
        middle.setContentsMargins(4, 8, 4, 4)
        middle.setSpacing(4)
        middle.addWidget(self.description)
        middle.addWidget(self.table, 1)
        middle.addWidget(self.pager)

        # Issue 15: the detail panes are made after the first rows are painted (see
        # `finish_building`); an empty widget holds their place in the splitter, so the table
        # does not move when they come.
        self._finished_building = False
        self.details: QSplitter | None = None
        self._image_pane: ImageStatusPane | None = None
        self._metadata_pane: MetadataPane | None = None
        self._image_source: tuple = (None, None)  # the store and database the Image status pane reads

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(sidebar)
        self.splitter.addWidget(center)
        self.splitter.addWidget(QWidget())
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([250, 730, 300])
        self.splitter.setCollapsible(0, True)
        self.splitter.setCollapsible(1, False)
        self.splitter.setCollapsible(2, True)

        self.read_only_banner = NoticeBar("banner")
        self.change_hint = NoticeBar("hint")
        browser = QWidget()
        outer = QVBoxLayout(browser)
        outer.setContentsMargins(6, 6, 6, 0)
        outer.setSpacing(4)
        outer.addWidget(self.read_only_banner)
        outer.addWidget(self.change_hint)
        outer.addWidget(self.splitter, 1)

        self.empty = EmptyState()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(browser)
        self.browser = browser
        self.setCentralWidget(self.stack)

        self.resize(1480, 900)

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None) -> QAction:
        action = QAction(text, self)
        if icon_name:
            set_icon(action, icon_name)
        if shortcut is not None:
            action.setShortcut(shortcut)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _lazy_dock(self, title: str, name: str, make) -> QDockWidget:
        """A hidden bottom dock whose widget `make()` builds the first time the dock shows."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        dock.hide()
        dock.visibilityChanged.connect(lambda visible: make() if visible else None)
        return dock

    def _build_details(self) -> None:
        """The Image status and Metadata panes in their splitter, in the place kept for them."""
        if self.details is not None:
            return
        from ui.detail_pane import ImageStatusPane, MetadataPane  # loaded after the first rows

        self._image_pane, self._metadata_pane = image, metadata = ImageStatusPane(), MetadataPane()
        details = QSplitter(Qt.Orientation.Vertical)
        details.setObjectName("detailSplitter")
        details.addWidget(image)
        details.addWidget(metadata)
        details.setStretchFactor(0, 3)
        details.setStretchFactor(1, 2)
        state = self.settings.state("detail_splitter")
        if state is not None:
            details.restoreState(state)
        self.details = details
        # The splitter's state was restored with the placeholder in this place: restored again
        # with the panes, else panes dragged shut reopen at their smallest width. Its state,
        # not `sizes()`: a window still narrower than its panes need squeezes the sizes.
        state = self.splitter.saveState()
        self.splitter.replaceWidget(2, details).deleteLater()
        self.splitter.restoreState(state)
        ea = self.entry_actions
        metadata.set_actions([ea.add_metadata, ea.update_metadata, ea.remove_metadata])
        metadata.key_selected.connect(ea.set_meta_key)
        self._set_image_source(*self._image_source)

    @property
    def image_pane(self) -> ImageStatusPane:
        """The Image status pane, made now if the window has not made it yet."""
        self._build_details()
        return self._image_pane

    @property
    def metadata_pane(self) -> MetadataPane:
        self._build_details()
        return self._metadata_pane

    def _set_image_source(self, store, database: str | None) -> None:
        self._image_source = (store, database)
        if self._image_pane is not None:
            from ui.detail_pane import ImageSource

            self._image_pane.set_source(ImageSource(self.workers, store) if store is not None else None, database)

    @property
    def pending_pane(self) -> PendingChangesPane:
        """The Pending changes pane, made on first use with what it would show by now."""
        if self._pending_pane is None:
            from ui.pending_changes import PendingChangesPane

            self._pending_pane = pane = PendingChangesPane()
            if self._pending_shown is not None:
                pane.set_changes(*self._pending_shown)
            pane.push_requested.connect(self.open_push)
            pane.discard_requested.connect(self._on_pending_pane_discard_requested)
            self.pending_dock.setWidget(pane)
        return self._pending_pane

    @property
    def changes_view(self) -> ChangesView:
        """The Changes view, made on first use for the current store and database."""
        if self._changes_view is None:
            from ui.changes_view import ChangesView

            self._changes_view = view = ChangesView(self.workers)
            if self.session.store is not None:
                view.set_store(self.session.store)
            name = self.filter_panel.database
            view.show_database(name, self.database_panel.mirror_of(name))
            view.finding_activated.connect(self._on_changes_view_finding_activated)
            self.changes_dock.setWidget(view)
        return self._changes_view

    def _build_menus(self) -> None:
        ea = self.entry_actions
        K = QKeySequence
        self.open_action = self._action("&Open store…", self.open_store_dialog, K.StandardKey.Open, "open",
                                        "Open an SQLite store file or a PostgreSQL/MySQL store")
        self.new_store_action = self._action("&New store…", self.new_store, K.StandardKey.New, None,
                                             "Create a new, empty SQLite store file and open it")
        self.clear_recent_action = self._action("&Clear recent stores", self.clear_recent_stores)
        self.refresh_action = self._action("&Refresh", self.refresh, K.StandardKey.Refresh, "refresh",
                                           "Reload databases, counts and the current page (F5)")
        if self.refresh_action.shortcut().isEmpty():
            self.refresh_action.setShortcut(K("F5"))
        self.export_action = self._action("&Export…", self.open_export, K("Ctrl+E"), "export",
                                          "Export the current listing, page or selection")
        self.import_action = self._action("&Import…", self.open_import, None, "import",
                                          "Import image hashes from a file")
        self.attach_action = self._action("&Attach images…", self.open_attach, None, None,
                                          "Compute pHashes (and optionally store images) from a folder of image files")
        self.connect_action = self._action("&Connect to Media Server…", self.open_mirrors, None, None,
                                           "Pull Media Server databases into mirrors and see what changed")
        self.publish_action = self._action("&Publish to Media Server…", self.open_publish, None, None,
                                           "Train a local database's entries into a Media Server database")
        self.audit_action = self._action("&Audit…", self.open_audit, None, "audit",
                                         "Duplicates, near-duplicates and metadata coverage")
        self.serve_action = self._action("&Serve this store over ACI…", self.open_serve, None, None,
                                         "Answer Media Server's image-hash actions over HTTP")
        self.quit_action = self._action("&Quit", self.close, K.StandardKey.Quit, "quit")
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(K("Ctrl+Q"))
        self.focus_filter_action = self._action("&Filter…", self.filter_panel.focus_filter, K.StandardKey.Find, "filter",
                                                "Move to the filter panel (Ctrl+F)")
        self.clear_filters_action = self._action("&Clear filters", self.filter_panel.clear, None, "clear")
        self.go_to_action = self._action("&Go to entry…", self._focus_go_to, K("Ctrl+G"), None,
                                         "Show the page starting at entry N")
        self.find_similar_action = self._action("Find &similar images", self._find_similar, None, "similar",
                                                "Filter to entries whose pHash is within the chosen distance")
        self.copy_action = self.table.copy_action
        set_icon(self.copy_action, "copy")
        self.fit_columns_action = self._action("Fit columns to contents", self.table.size_columns)
        self.stop_action = self._action("&Stop loading", self._stop_loading, K("Esc"), "clear",
                                        "Stop fetching the page and keep the one shown")
        self.about_action = self._action("&About Hashlens", self.show_about, None, "about")
        self.about_qt_action = self._action("About &Qt", lambda: QMessageBox.aboutQt(self))
        self.log_action = self.action_log.toggleViewAction()
        self.log_action.setText("Action &log")
        set_icon(self.log_action, "log")
        self.log_action.setShortcut(K("Ctrl+L"))
        self.pending_action = self.pending_dock.toggleViewAction()
        self.pending_action.setText("&Pending changes")
        self.pending_action.setToolTip("A mirror's staged changes, to push to its Media Server")
        self.changes_action = self.changes_dock.toggleViewAction()
        self.changes_action.setText("&Changes since the previous pull")
        self.changes_action.setIconText("Changes")
        set_icon(self.changes_action, "changes")
        self.changes_action.setShortcut(K("Ctrl+Shift+D"))
        self.changes_action.setStatusTip("What changed in the current mirror between its last two pulls (Ctrl+Shift+D)")
        pull_again = self.mirror_actions.pull_again

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_store_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addAction(self.import_action)
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.connect_action)
        file_menu.addAction(pull_again)
        file_menu.addAction(self.publish_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit = bar.addMenu("&Edit")
        edit.addAction(self.copy_action)
        edit.addSeparator()
        for a in (ea.add_metadata, ea.update_metadata, ea.remove_metadata):
            edit.addAction(a)
        edit.addSeparator()
        for a in (ea.relabel, ea.rename, ea.move):
            edit.addAction(a)
        edit.addSeparator()
        edit.addAction(ea.null_image)
        edit.addAction(ea.remove)

        db = bar.addMenu("&Database")
        for a in (ea.new_database, ea.rename_database, ea.remove_database):
            db.addAction(a)
        db.addSeparator()
        for a in (ea.train_files, ea.train_folder):
            db.addAction(a)
        db.addAction(self.attach_action)
        db.addSeparator()
        db.addAction(ea.create_sample)

        view = bar.addMenu("&View")
        view.addAction(self.refresh_action)
        view.addAction(pull_again)
        view.addAction(self.focus_filter_action)
        view.addAction(self.clear_filters_action)
        view.addAction(self.go_to_action)
        view.addAction(self.stop_action)
        view.addAction(self.find_similar_action)
        view.addSeparator()
        view.addAction(self.log_action)
        view.addAction(self.pending_action)
        view.addAction(self.changes_action)
        view.addAction(self.audit_action)
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        self.theme_actions = {}
        for mode, text in (("system", "Follow the &system"), ("light", "&Light"), ("dark", "&Dark")):
            action = theme_menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(self.theme.mode == mode)
            action.triggered.connect(lambda _c=False, m=mode: self.set_theme(m))
            self.theme_group.addAction(action)
            self.theme_actions[mode] = action
        view.addAction(self.fit_columns_action)

        bar.addMenu("&Tools").addAction(self.serve_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)
        help_menu.addAction(self.about_qt_action)

        tools = QToolBar("Main")
        tools.setObjectName("mainToolbar")
        tools.setIconSize(icon_size())
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tools.setMovable(False)
        for a in (self.open_action, self.refresh_action, pull_again, None, ea.train_files, ea.train_folder, None,
                  self.export_action, self.import_action, self.audit_action, None, self.log_action,
                  self.changes_action):
            if a is None:
                tools.addSeparator()
            else:
                tools.addAction(a)
        self.addToolBar(tools)
        self.toolbar = tools

        self.table.set_context_actions([
            self.find_similar_action, None, ea.add_metadata, ea.update_metadata, ea.remove_metadata, None,
            ea.relabel, ea.rename, ea.move, None, ea.null_image, ea.remove, None, self.export_action,
        ])
        self.database_panel.add_context_actions([ea.new_database, ea.rename_database, ea.remove_database,
                                                 ea.train_folder, pull_again])
        for a in (self.open_action, self.refresh_action, self.export_action, self.quit_action,
                  self.focus_filter_action, self.go_to_action, self.log_action, pull_again, self.changes_action):
            self.addAction(a)  # shortcuts work with the menu bar hidden too
        self._rebuild_recent_menu()

    def _wire(self) -> None:
        s, m, t, f, p = self.session, self.model, self.table, self.filter_panel, self.pager
        s.opening.connect(self._on_session_opening)
        s.opened.connect(self._on_session_opened)
        s.open_failed.connect(self._on_session_open_failed)
        s.databases_changed.connect(self._on_session_databases_changed)
        s.changed_elsewhere.connect(self._on_session_changed_elsewhere)
        s.recovered.connect(self._on_session_recovered)
        s.poll_failed.connect(lambda e: self.presenter.notify(f"Cannot check the store for changes: {e.description}"))
        self.database_panel.database_chosen.connect(self._use_database)
        f.query_changed.connect(m.set_query)
        f.query_changed.connect(self._on_filter_query_changed)
        m.page_loaded.connect(self._update_pager)
        m.page_loaded.connect(self._on_model_page_loaded)
        m.count_changed.connect(self._update_pager)
        m.loading_changed.connect(self._update_pager)
        m.query_requested.connect(self._update_description)
        m.failed.connect(lambda e: self.presenter.show_error(e, "Listing"))
        p.first_requested.connect(m.first_page)
        p.previous_requested.connect(m.previous_page)
        p.next_requested.connect(m.next_page)
        p.last_requested.connect(m.last_page)
        p.go_to_requested.connect(m.go_to)
        p.go_to_refused.connect(self.presenter.notify)
        p.page_size_changed.connect(self._on_pager_page_size_changed)
        p.stop_requested.connect(self._stop_loading)
        t.rows_selected.connect(self._on_table_rows_selected)
        t.copied.connect(lambda n: self.presenter.notify(f"Copied {n:,} row{'s' if n != 1 else ''} as tab-separated text."))
        t.doubleClicked.connect(lambda _i: self.image_pane.view.fit())
        self.entry_actions.changed.connect(self._on_entry_actions_changed)
        self.entry_actions.busy_changed.connect(self.status_bar.set_busy)
        self.change_hint.action_clicked.connect(self.refresh)
        self.read_only_banner.action_clicked.connect(self.open_store_dialog)
        self.empty.open_store.connect(self.open_store_dialog)
        self.empty.create_sample.connect(self.entry_actions.on_create_sample)
        self.empty.new_database.connect(self.entry_actions.on_new_database)
        self.empty.train_folder.connect(self.entry_actions.on_train_folder_into_new_database)
        self.theme.changed.connect(self._on_theme_changed)
        self.mirror_actions.pulled.connect(self._on_mirror_actions_pulled)
        self.mirror_actions.failed.connect(
            lambda e: self.presenter.show_error(e, "Pull mirror again (the previous snapshot is kept)"))

    def _restore(self) -> None:
        geometry = self.settings.state("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.state("main_splitter")
        if state is not None:
            self.splitter.restoreState(state)
        self.table.restore_header(self.settings.state("header"))
        state = self.settings.state("window_state")
        if state is not None:
            self.restoreState(state)

    def save_settings(self) -> None:
        self.settings.set_state("geometry", self.saveGeometry())
        self.settings.set_state("main_splitter", self.splitter.saveState())
        if self.details is not None:  # else the saved state is still the one to restore
            self.settings.set_state("detail_splitter", self.details.saveState())
        self.settings.set_state("header", self.table.save_header())
        self.settings.set_state("window_state", self.saveState())
        self.settings.set_page_size(self.model.page_size)
        self.settings.sync()

    # -- stores --------------------------------------------------------------------------------

    def open_store(self, url: str, read_only: bool = False, reason: str | None = None, create: bool = False) -> None:
        """Open a store (in the background); `--read-only` wins over the caller. A store
        file that does not exist is made only with `create` or after the person agrees."""
        if self.force_read_only:
            read_only, reason = True, "Hashlens was started with --read-only"
        missing = None if read_only else missing_store_file(url)
        if missing is not None and not create:
            if not self.prompter.create_store(missing):
                self._show_no_store(f"No store was created at {missing}.")
                return
            create = True
        self.session.open(url, read_only=read_only, reason=reason, create=create and missing is not None,
                          first_page=self._first_page_reader(url))

    def _first_page_reader(self, url: str):
        """What the open job runs to read the first page the window will show (the database
        last used with this store, else the first one; no filter), prepared for the table:
        the rows are then on screen as soon as the store has opened (issue 15)."""
        last = self.settings.last_database(url)
        template = self.model.windowed(ListingQuery(last or "-"))  # order and page size, read here

        def read(store, databases):
            names = [d.name for d in databases]
            query = dataclasses.replace(template, database=last if last in names else names[0])
            return query, prepare(actions.list_image_hashes(store, query))

        return read

    def new_store(self) -> None:
        """File ▸ New store…: choose where, then create and open it."""
        path = self.prompter.new_store_file()
        if path:
            self.open_store(url_for(path), create=True)

    def clear_recent_stores(self) -> None:
        self.settings.clear_recent_stores()
        self._rebuild_recent_menu()

    def open_store_dialog(self) -> None:
        dialog = OpenStoreDialog(self.settings.recent_stores(), self, read_only=self.session.read_only,
                                 forced_read_only=self.force_read_only)
        if dialog.exec() == OpenStoreDialog.DialogCode.Accepted and dialog.url():
            reason = "you chose to open it read-only" if dialog.read_only.isChecked() else None
            self.open_store(dialog.url(), dialog.read_only.isChecked(), reason)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_stores()
        for url in recent:
            action = self.recent_menu.addAction(url)
            action.triggered.connect(lambda _c=False, u=url: self.open_store(u))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction(self.clear_recent_action)
        self.recent_menu.setEnabled(bool(recent))

    def _on_session_opening(self, url: str) -> None:
        self._opening = True
        self.status_bar.showMessage(f"Opening {url}…")

    def _on_session_opened(self, store) -> None:
        self._opening = False
        reason = self.session.read_only_reason
        self.model.set_source(ListingSource(self.workers, store))
        if self.session.first_page is not None:
            self.model.seed(*self.session.first_page)
        self._set_image_source(store, None)
        self.entry_actions.set_store(store, reason)
        self.mirror_actions.set_store(store, reason)
        if self._changes_view is not None:
            self._changes_view.set_store(store)
        self.settings.add_recent_store(self.session.url)
        self._rebuild_recent_menu()
        # The title ends with the application's display name, or Qt appends it a second time.
        self.setWindowTitle(f"{store.describe()}" + (" (read-only)" if reason else "") + " — Hashlens")
        self.import_action.setEnabled(not reason)
        self.attach_action.setEnabled(not reason)
        self.status_bar.show_store(store.describe(), bool(reason))
        self.status_bar.showMessage(f"Opened {store.describe()}", 4000)
        if reason:
            button = None if self.force_read_only else "Open for writing…"
            self.read_only_banner.show_notice(
                f"Read-only: {reason}. Training, editing and removing are disabled.", button)
        else:
            self.read_only_banner.hide()
        self.change_hint.hide()
        self._pending_database = self.settings.last_database(self.session.url or "")
        self.database_panel.set_databases([])
        self.filter_panel.set_database(None)
        self.model.clear()

    def _on_session_open_failed(self, error: HashlensError) -> None:
        self._opening = False
        self.presenter.show_error(error, "Open store")
        if self.session.store is None:
            self._show_no_store(error.description)

    def _on_session_databases_changed(self, databases) -> None:
        current = self.filter_panel.database
        wanted = self._pending_database or current
        self._pending_database = None
        self.database_panel.set_databases(databases)
        names = [d.name for d in databases]
        self.entry_actions.entry_counts = {d.name: d.entry_count for d in databases}
        self.entry_actions.set_database(current if current in names else None, names)
        if not databases:
            self.filter_panel.set_database(None)
            self.model.clear()
            self.empty.show_empty_store(self.session.describe(), self.session.read_only)
            self.stack.setCurrentWidget(self.empty)
            self._update_status()
            return
        self.stack.setCurrentWidget(self.browser)
        name = wanted if wanted in names else names[0]
        self.select_database(name)
        self._show_mirror_state(self.filter_panel.database)  # a pull may have made a new snapshot
        self._show_pending_changes(self.filter_panel.database)  # and a mirror may be new
        self._update_status()

    def select_database(self, name: str) -> None:
        self.database_panel.select(name)  # → database_chosen → _use_database

    def _use_database(self, name: str) -> None:
        if name == self.filter_panel.database:
            return
        self._set_image_source(self._image_source[0], name)
        self.entry_actions.set_database(name, self.database_panel.names())
        if self.session.url:
            self.settings.set_last_database(self.session.url, name)
        self.filter_panel.set_database(name)
        self._show_mirror_state(name)
        self._load_metadata_keys(name)
        self._show_pending_changes(name)
        self._update_status()

    def _show_mirror_state(self, name: str | None) -> None:
        """Tell the parts that treat a mirror differently whether `name` is one."""
        latest = self.database_panel.mirror_of(name)
        self.entry_actions.set_mirror(latest.source.describe() if latest is not None else None)
        self.mirror_actions.set_database(name, latest)
        if self._changes_view is not None:
            self._changes_view.show_database(name, latest)

    def _load_metadata_keys(self, database: str) -> None:
        self.session.load_metadata_keys(database, self.filter_panel.set_metadata_keys)

    def _show_no_store(self, reason: str | None = None) -> None:
        self.empty.show_no_store(reason)
        self.stack.setCurrentWidget(self.empty)
        self.entry_actions.set_store(None, None)
        self.mirror_actions.set_store(None, None)
        if self._changes_view is not None:
            self._changes_view.set_store(None)
        self._update_status()

    # -- browsing ------------------------------------------------------------------------------

    def _on_filter_query_changed(self, query: ListingQuery) -> None:
        self._update_description(self.model.query or query)

    def _update_description(self, query: ListingQuery | None) -> None:
        if query is None:
            self.description.setText("")
            return
        self.description.setText(f"<b>{_html(query.database)}</b> · showing {_html(query.describe())}")

    def _update_pager(self, *_):
        m = self.model
        self.pager.update_state(m.query, m.rowCount(), m.count, m.has_next(), m.last_start(), m.loading)
        self.table.set_placeholder(self._placeholder_text())
        self._update_status()

    def _placeholder_text(self) -> str:
        m = self.model
        if m.query is None or m.rowCount() or m.page is None:
            return "Loading…" if m.loading else ""
        if m.query.start > 1:
            total = f" The listing has {m.count} entries." if m.count is not None else ""
            return f"No entries from entry {m.query.start:,} on.{total}"
        if m.query.is_filtered:
            return "No entries match this filter.\nChange or clear the filter (View ▸ Clear filters)."
        if self.session.read_only:
            return "This database has no entries."
        return "This database has no entries yet.\nTrain images into it with Database ▸ Train images…"

    def _update_status(self) -> None:
        m, bar = self.model, self.status_bar
        bar.show_database(self.filter_panel.database)
        bar.show_count(m.count if m.query is not None else None)
        bar.show_timing(m.last_elapsed_ms if m.query is not None else None, m.last_from_cache)
        if self.session.store is None:
            bar.show_store(None)

    def _on_pager_page_size_changed(self, size: int) -> None:
        self.model.set_page_size(size)
        self.settings.set_page_size(size)

    def _on_table_rows_selected(self, rows) -> None:
        if rows or self.details is not None:  # a selection makes the panes; made later, they start empty
            self.image_pane.show_rows(rows)
            self.metadata_pane.show_rows(rows)
        self.entry_actions.set_rows(rows)
        # An entry whose pHash is not known has nothing to be similar to.
        known = len(rows) == 1 and rows[0].phash is not None
        self.filter_panel.set_reference(rows[0].phash_hex if known else None)
        self.find_similar_action.setEnabled(known)
        if known:
            self._reference_row = rows[0]

    def _on_model_page_loaded(self, page) -> None:
        # Near results of a selected entry keep that entry selected (it is their reference,
        # nearest first at distance 0), so its panes stay and the next step starts from it.
        row = self._reference_row
        if page is None or row is None or page.query.reference != row.phash or self.table.selected_rows():
            return
        for i, shown in enumerate(page.rows):
            if shown.key == row.key:
                self.table.select_row(i)
                return

    def _find_similar(self) -> None:
        rows = self.table.selected_rows()
        if len(rows) == 1 and rows[0].phash is not None:
            self.filter_panel.find_similar(rows[0].phash_hex)

    def _stop_loading(self) -> None:
        if self.model.cancel_loading():
            self.presenter.notify("Stopped loading; the page shown is the previous one.")

    def _focus_go_to(self) -> None:
        self.pager.go_to.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.pager.go_to.selectAll()

    def show_query(self, query: ListingQuery) -> None:
        """Show a listing made elsewhere (an audit finding) in the table and the panel."""
        if query.database != self.filter_panel.database:
            self.select_database(query.database)
        self.filter_panel.set_query(query)

    def _on_changes_view_finding_activated(self, database: str, identifier: str) -> None:
        self.show_query(ListingQuery(database, identifiers=(identifier,)))

    def _on_mirror_actions_pulled(self, report) -> None:
        self.action_log.add([report.text()])
        self.status_bar.showMessage(report.text(), 15000)
        self.changes_dock.show()
        self._reload_after_own_write(None, report.database)

    def refresh(self) -> None:
        """F5: reload databases, counts and the page; clear the 'changed elsewhere' hint."""
        if self.session.store is None:
            return
        self.session.mark_seen()
        self.model.refresh()
        self.session.refresh_databases()
        if self.filter_panel.database:
            self._load_metadata_keys(self.filter_panel.database)
        self._show_pending_changes(self.filter_panel.database)

    def _on_session_recovered(self, title: str, description: str) -> None:
        """A store error that a fresh connection disproved: say so briefly and reload."""
        self.presenter.notify(f"{title}: the store could not be read for a moment ({description}); "
                              "it reads again, so Hashlens reconnected.", 15000)
        self.model.refresh()
        self.session.refresh_databases()

    def _on_session_changed_elsewhere(self, changed: bool) -> None:
        if changed:
            self.change_hint.show_notice("The store was changed elsewhere since this page was loaded.", "Refresh")
        else:
            self.change_hint.hide()

    def _on_entry_actions_changed(self, result: WriteResult) -> None:
        if result.lines:
            self.action_log.add(result.lines)
        self._reload_after_own_write(result.token, result.select_database)

    def _on_window_imported(self, database: str, _count: int) -> None:
        # Our own import: not a change made elsewhere, and its database belongs in the picker now.
        self._reload_after_own_write(None, database)

    def _reload_after_own_write(self, token: int | None, select_database: str | None) -> None:
        self.session.mark_seen(token)
        if select_database:
            self._pending_database = select_database
        self.model.refresh()
        self.session.refresh_databases()
        if self.filter_panel.database:
            self._load_metadata_keys(self.filter_panel.database)
        self._show_pending_changes(self.filter_panel.database)

    # -- other windows -----------------------------------------------------------------------

    def _selected_identifiers(self) -> list[str] | None:
        rows = self.table.selected_rows()
        return [r.identifier for r in rows] if rows else None

    def open_export(self) -> None:
        store, query = self.session.store, self.model.query
        if store is None or query is None:
            self.presenter.notify("Choose a database to export first.")
            return
        from ui.export_dialog import ExportDialog  # the export machinery: loaded when first used

        count = self.model.count
        dialog = ExportDialog(store, query, self._selected_identifiers(), self.model.rows, self, workers=self.workers,
                              listing_count=count.value if count is not None and count.exact else None)
        dialog.exported.connect(lambda path: self.status_bar.showMessage(f"Exported to {path}", 15000))
        dialog.exec()

    def open_mirrors(self) -> None:
        store = self.session.store
        if store is None:
            return
        from ui.mirror_dialog import MirrorDialog  # the Media Server client: loaded when first used

        dialog = MirrorDialog(store, self, workers=self.workers)
        # The dialog's pulls make or refresh databases: the picker shows them at once.
        dialog.pulled.connect(lambda reports: self._reload_after_own_write(
            None, reports[-1].database if reports else None))
        dialog.exec()

    # -- staged changes on mirrors ---------------------------------------------------------------

    def _show_pending_changes(self, name: str | None) -> None:
        """The Pending changes pane and the picker's counts follow the current database
        (short reads); a store that cannot be read now leaves them as they were. Only a
        mirror has staged changes: a store without one needs no reads (nor their module,
        which is not loaded before the first rows)."""
        store = self.session.store
        if store is None or not any(d.mirror is not None for d in self.session.databases):
            self._set_pending_changes(None, [])
            if store is not None:
                self.database_panel.set_pending_counts({})
            return
        from app.mediaserver import staged

        try:
            source = staged.mirror_source(store, name) if name else None
            waiting = staged.outstanding(store, name) if source is not None else []
            counts = staged.pending_counts(store)
        except HashlensError as exc:
            log.debug("staged changes not read: %s", exc.description)
            return
        self._set_pending_changes(name if source is not None else None, waiting,
                                  source.url if source is not None else None)
        self.database_panel.set_pending_counts(counts)
        if waiting:
            self.pending_dock.show()

    def _set_pending_changes(self, *shown) -> None:
        """Show `shown` (set_changes's arguments) in the pending pane, or keep them for when it is made."""
        self._pending_shown = shown
        if self._pending_pane is not None:
            self._pending_pane.set_changes(*shown)

    def open_push(self, mirror: str) -> None:
        store = self.session.store
        from app.mediaserver import staged

        source = staged.mirror_source(store, mirror) if store is not None else None
        if source is None:
            return
        from ui.push_dialog import PushDialog  # the client and push machinery: loaded when first used

        dialog = PushDialog(store, mirror, source.url, staged.outstanding(store, mirror), self,
                            workers=self.workers)
        dialog.pushed.connect(lambda report: self._on_push_dialog_pushed(mirror, report))
        dialog.exec()

    def _on_push_dialog_pushed(self, mirror: str, report) -> None:
        if report is not None:
            # Comments, not requests: replaying a pushed action would apply it twice.
            self.action_log.add([f"# pushed to {report.server}: {o.state}"
                                 + (f" ({o.note})" if o.note else "") + f": {o.change.line()}"
                                 for o in report.outcomes])
        self._reload_after_own_write(None, mirror)

    def _on_pending_pane_discard_requested(self, mirror: str, count: int) -> None:
        store = self.session.store
        if store is None:
            return
        what = "the last staged change" if count == 1 else "every staged change"
        if not self.prompter.confirm("Discard staged changes", f"Take back {what} of '{mirror}'? The local copy "
                                     "returns to the snapshot plus the changes that remain.", "Discard"):
            return

        def work(progress, cancelled):
            from app.mediaserver import staged

            return staged.discard(store, mirror, count or None)

        def done(taken):
            self.status_bar.showMessage(f"Discarded {len(taken)} staged change(s) of '{mirror}'.", 15000)
            self._reload_after_own_write(None, mirror)

        self.workers.run_task("task", work, title="Discard staged changes", text=f"Discarding changes of '{mirror}'",
                              parent=self, store=store, on_done=done,
                              on_error=lambda e: self.presenter.show_error(e, "Discard"))

    def open_publish(self) -> None:
        store = self.session.store
        if store is None:
            return
        if self.session.read_only:
            # A publish records what it sent in the store, so a broken run can resume.
            self.presenter.notify(f"Publishing is disabled: the store is read-only ({self.session.read_only_reason}).")
            return
        from ui.publish_dialog import PublishDialog

        dialog = PublishDialog(store, self.filter_panel.database, [d.name for d in self.session.databases], self,
                               workers=self.workers, prompter=self.prompter)
        dialog.published.connect(lambda _report: self.refresh())  # a published database becomes a mirror
        dialog.exec()

    def open_import(self) -> None:
        store = self.session.store
        if store is None:
            return
        if self.session.read_only:
            self.presenter.notify(f"Import is disabled: the store is read-only ({self.session.read_only_reason}).")
            return
        from ui.import_dialog import ImportDialog

        dialog = ImportDialog(store, self.filter_panel.database, self, workers=self.workers,
                              databases=[d.name for d in self.session.databases])
        dialog.imported.connect(self._on_window_imported)
        dialog.exec()

    def open_attach(self) -> None:
        store = self.session.store
        if store is None:
            return
        if self.session.read_only:
            self.presenter.notify(f"Attach images is disabled: the store is read-only ({self.session.read_only_reason}).")
            return
        from ui.attach_dialog import AttachDialog

        dialog = AttachDialog(store, self.filter_panel.database, self, workers=self.workers,
                              databases=[d.name for d in self.session.databases])
        dialog.attached.connect(self._on_window_imported)
        dialog.exec()

    def open_audit(self) -> None:
        store = self.session.store
        if store is None:
            return
        from ui.audit_view import AuditWindow  # NumPy and the audit checks: loaded when first used

        window = AuditWindow(store, self.filter_panel.database, self, workers=self.workers)
        window.show_filter.connect(self.show_query)
        window.show()
        self._audit_window = window

    def show_about(self) -> None:
        from PySide6 import __version__ as pyside_version

        QMessageBox.about(
            self, "About Hashlens",
            f"<h3>Hashlens {app.__version__}</h3>"
            "<p>Browse, export and audit OpenText IDOL Media Server image-hash databases.</p>"
            "<p>Hashlens answers Media Server's image-hash actions (ListImageHashes and its family). "
            "The pHash it shows is its own perceptual hash of each training image, not a Media Server "
            "value.</p>"
            f"<p>Store: {_html(self.session.describe())}<br>PySide6 {pyside_version}</p>",
        )

    # -- look and feel ------------------------------------------------------------------------

    def set_theme(self, mode: str) -> None:
        self.theme.set_mode(mode)
        self.settings.set_theme(mode)
        self.theme_actions[mode].setChecked(True)

    def _on_theme_changed(self, _scheme: str) -> None:
        refresh_icons(self)
        refresh_icons(self.entry_actions)
        self.database_panel.restyle()
        self.read_only_banner.restyle()
        self.change_hint.restyle()
        if self._image_pane is not None:
            self._image_pane.grid.update()

    def sizeHint(self) -> QSize:
        return QSize(1480, 900)

    # -- closing -------------------------------------------------------------------------------

    def open_serve(self) -> None:
        if not self.session.url:
            return
        previous = getattr(self, "serve_dialog", None)
        if previous is None or previous.store_url != self.session.url:
            if previous is not None:
                previous.shutdown()  # it served the store that was open before
            from ui.serve_dialog import ServeDialog  # waitress: loaded when first used

            self.serve_dialog = ServeDialog(self.session.url, self, read_only=self.session.read_only,
                                            workers=self.workers)
        self.serve_dialog.show()
        self.serve_dialog.raise_()

    def closeEvent(self, event) -> None:
        if not self._closed:
            self._closed = True
            if getattr(self, "serve_dialog", None) is not None:
                self.serve_dialog.shutdown()
            self.save_settings()
            if self.entry_actions.progress_dialog is not None:
                self.entry_actions.progress_dialog.reject()  # ask the long job to stop
            self.stopped_cleanly = self.session.shutdown(wait_ms=10000)
            if not self.stopped_cleanly:
                log.warning("background work did not stop within 10 s of closing")
        super().closeEvent(event)

    def shutdown(self) -> bool:
        """Close without a close event (tests, the benchmark); True if every worker stopped."""
        if not self._closed:
            self._closed = True
            self.stopped_cleanly = self.session.shutdown()
        return self.stopped_cleanly


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

