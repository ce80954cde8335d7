"""File > Connect to Media Server…: pull databases into mirrors, refresh them, and see what changed since the previous pull."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialogButtonBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
    QPushButton, QSplitter, QStyle, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from app.domain import HashlensError
from app.mediaserver.client import MediaServerClient
from app.mediaserver import mirror
from ui.job_dialog import JobDialog

SETTINGS_URLS = "mediaserver/urls"
SETTINGS_DATABASES = "mediaserver/databases"
REMEMBERED_URLS = 10
CHANGES_SHOWN = 500  # lines in the Changes pane; the counts above it are complete


def split_names(text: str) -> list[str]:
    """Database names typed as a comma-separated list; spaces around names are dropped
    (a name with a comma cannot be typed here: pull it with `hashlens pull`)."""
    return [name.strip() for name in text.split(",") if name.strip()]


class MirrorDialog(JobDialog):
    """Pull Media Server databases into mirrors; each pull is a snapshot, stored only
    when complete. The list shows every mirror with its source and "as of" time; the
    Changes pane shows what changed between the selected mirror's last two pulls."""

    pulled = Signal(object)  # list[PullReport]

    def __init__(self, store, parent=None, workers=None):
        super().__init__(workers, parent)
        self.setWindowTitle("Media Server mirrors")
        self.resize(1180, 560)
        self.store = store
        self.settings = QSettings()
        self._build()
        self.refresh_mirrors()

    # -- building -----------------------------------------------------------------------

    def _build(self) -> None:
        self.url_combo = QComboBox()
        self.url_combo.setEditable(True)
        self.url_combo.lineEdit().setPlaceholderText("http://mediaserver:14000")
        for url in self.settings.value(SETTINGS_URLS, [], type=list):
            self.url_combo.addItem(url)
        self.databases_edit = QLineEdit()
        self.databases_edit.setPlaceholderText("ImageHashes, Logos (Media Server cannot list its databases)")
        self.url_combo.currentTextChanged.connect(self._on_url_combo_changed)
        self._on_url_combo_changed(self.url_combo.currentText())
        self.pull_button = QPushButton("Pull")
        self.pull_button.setDefault(True)
        self.pull_button.clicked.connect(self._on_pull_button_clicked)
        form = QFormLayout()
        form.addRow("Server", self.url_combo)
        row = QHBoxLayout()
        row.addWidget(self.databases_edit, 1)
        row.addWidget(self.pull_button)
        form.addRow("Databases", row)
        connect_box = QGroupBox("Connect to Media Server")
        connect_box.setLayout(form)

        self.mirror_list = QTreeWidget()
        self.mirror_list.setHeaderLabels(["Mirror", "Source", "Snapshot", "As of", "Entries"])
        self.mirror_list.setRootIsDecorated(False)
        self.mirror_list.itemSelectionChanged.connect(self._on_mirror_list_selection_changed)
        self.refresh_button = QPushButton("Refresh (pull again)")
        self.refresh_button.setEnabled(False)
        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.mirror_list, 1)
        left_layout.addWidget(self.refresh_button)

        self.changes_title = QLabel("Changes since the previous pull")
        self.changes_summary = QLabel("Select a mirror.")
        self.changes_summary.setWordWrap(True)
        self.changes_view = QPlainTextEdit()
        self.changes_view.setReadOnly(True)
        self.changes_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.changes_title)
        right_layout.addWidget(self.changes_summary)
        right_layout.addWidget(self.changes_view, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([700, 480])
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(connect_box)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

    # -- mirrors ------------------------------------------------------------------------

    def refresh_mirrors(self, select: str | None = None) -> None:
        """Re-read the list of mirrors (a short read on the GUI thread: one row per mirror)."""
        current = select or self.selected_mirror()
        self.mirror_list.clear()
        icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DriveNetIcon)  # the server mark
        for name, source, latest in mirror.list_mirrors(self.store):
            item = QTreeWidgetItem([
                name, source.describe(), str(latest.number) if latest else "-",
                mirror.iso_time(latest.taken_at) if latest else "never", f"{latest.entry_count:,}" if latest else "-",
            ])
            item.setIcon(0, icon)
            item.setData(0, Qt.ItemDataRole.UserRole, (name, source.url, source.database))
            self.mirror_list.addTopLevelItem(item)
            if name == current:
                item.setSelected(True)
                self.mirror_list.setCurrentItem(item)
        for column in range(5):
            self.mirror_list.resizeColumnToContents(column)

    def selected_mirror(self) -> str | None:
        items = self.mirror_list.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole)[0] if items else None

    def _on_mirror_list_selection_changed(self) -> None:
        items = self.mirror_list.selectedItems()
        self.refresh_button.setEnabled(bool(items) and not self.busy)
        if not items:
            self.changes_summary.setText("Select a mirror.")
            self.changes_view.clear()
            return
        self.show_changes(items[0].data(0, Qt.ItemDataRole.UserRole)[0])

    def show_changes(self, name: str) -> None:
        """The difference between the mirror's two latest snapshots, capped to a readable
        number of lines (`hashlens diff` writes them all)."""
        try:
            summary, lines = mirror.latest_changes(self.store, name, CHANGES_SHOWN)
        except HashlensError as exc:
            summary, lines = exc.description, []
        self.changes_title.setText(f"Changes in '{name}' since the previous pull")
        self.changes_summary.setText(summary)
        self.changes_view.setPlainText("\n".join(lines))

    # -- pulling ------------------------------------------------------------------------

    def _on_url_combo_changed(self, url: str) -> None:
        remembered = self.settings.value(f"{SETTINGS_DATABASES}/{_key(url)}", "", type=str)
        if remembered:
            self.databases_edit.setText(remembered)

    def _on_pull_button_clicked(self) -> None:
        url = self.url_combo.currentText().strip()
        names = split_names(self.databases_edit.text())
        if not url or not names:
            self.status.setText("Give the server's address and at least one database name.")
            return
        self._pull(url, [(name, None) for name in names], remember=True)

    def _on_refresh_button_clicked(self) -> None:
        items = self.mirror_list.selectedItems()
        if items:
            name, url, remote = items[0].data(0, Qt.ItemDataRole.UserRole)
            self._pull(url, [(remote, name)], remember=False)

    def _pull(self, url: str, targets: list[tuple[str, str | None]], remember: bool) -> None:
        try:
            client = MediaServerClient(url)
        except HashlensError as exc:
            self.status.setText(exc.description)
            return
        if remember:
            self._remember(url, ", ".join(name for name, _ in targets))
        store = self.store

        def work(progress, cancelled):
            reports = []
            for remote, into in targets:
                reports.append(mirror.pull_mirror(store, client, remote, into=into,
                                                  progress=lambda p: progress(p.entries), cancelled=cancelled))
            return reports

        self.pull_button.setEnabled(False)
        self.refresh_button.setEnabled(False)
        self.status.setText(f"Pulling from {client.url}…")
        what = ", ".join(remote for remote, _ in targets)
        self.start_task(store, work, title="Pull from Media Server", text=f"Pulling {what} from {client.url}",
                        total=None, cancelling="Cancelling: nothing of this pull will be stored…",
                        on_done=self._on_pull_done, on_error=self._on_pull_failed)

    def _on_pull_done(self, reports) -> None:
        self.pull_button.setEnabled(True)
        self.status.setText("\n".join(r.text() for r in reports))
        self.refresh_mirrors(select=reports[-1].database if reports else None)
        self._on_mirror_list_selection_changed()
        self.pulled.emit(reports)

    def _on_pull_failed(self, error: HashlensError) -> None:
        self.pull_button.setEnabled(True)
        self.refresh_button.setEnabled(bool(self.mirror_list.selectedItems()))
        self.status.setText(f"{error.description} The previous snapshot is kept.")
        self.refresh_mirrors()

    def _remember(self, url: str, databases: str) -> None:
        urls = [url] + [u for u in self.settings.value(SETTINGS_URLS, [], type=list) if u != url]
        self.settings.setValue(SETTINGS_URLS, urls[:REMEMBERED_URLS])
        self.settings.setValue(f"{SETTINGS_DATABASES}/{_key(url)}", databases)


def _key(url: str) -> str:
    # QSettings treats '/' as a group separator and ':' badly in INI keys.
    return url.encode("utf-8").hex()
