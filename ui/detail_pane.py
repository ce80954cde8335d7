"""Detail panes beside the table: the image and its status, and the entry's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.domain import EntryRow, HashlensError, hamming
from app.services import actions
from ui import images
from ui.elided_label import ElidedLabel, WrappingLabel
from ui.icons import icon, set_icon
from ui.phash_grid import PHASH_NOTE, PhashGrid
from ui.models.metadata_model import DIFFERS, MetadataModel, shared_metadata

# Larger images are scaled down once, off the GUI thread, so a 50-megapixel training
# image never becomes a 200 MB pixmap (zoom stays sharp up to this size).
MAX_DISPLAY_SIDE = 4096


@dataclass(frozen=True)
class DecodedImage:
    """A training image ready to show, or why it cannot be shown."""

    identifier: str
    image: QImage | None
    removed: bool = False
    problem: str | None = None


def load_display_image(store, database: str, identifier: str) -> DecodedImage:
    """Fetch and decode one entry's image with the importer's safety rules (bombs,
    truncation and untrusted formats are refused). Runs on a worker thread: QImage,
    unlike QPixmap, may be made there."""
    info = actions.image(store, database, identifier)
    if info.data is None:
        return DecodedImage(identifier, None, removed=True)
    try:
        return DecodedImage(identifier, images.decode(info.data, MAX_DISPLAY_SIDE, "the stored image"))
    except HashlensError as exc:
        return DecodedImage(identifier, None, problem=f"cannot display image data ({exc.description})")


class ImageSource:
    """Loads images for the pane on the window's image lane; newest selection wins."""

    def __init__(self, workers, store):
        self.workers = workers
        self.store = store

    def load(self, database: str, identifier: str, on_done, on_error):
        store = self.store
        return self.workers.submit(
            "image", lambda: load_display_image(store, database, identifier),
            on_done=on_done, on_error=on_error, kind="image", store=store,
        )


class ImageView(QScrollArea):
    """The training image, scaled to fit or zoomed (Ctrl+wheel, or the pane's buttons)."""

    zoom_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._fit = True
        self._zoom = 1.0
        self._label = QLabel()
        self._label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWidget(self._label)
        self.setWidgetResizable(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumSize(120, 70)

    def set_image(self, image: QImage | None) -> None:
        self._pixmap = QPixmap.fromImage(image) if image is not None else None
        self._fit = True
        self._render()

    @property
    def has_image(self) -> bool:
        return self._pixmap is not None

    def fit(self) -> None:
        self._fit = True
        self._render()

    def actual_size(self) -> None:
        self._fit, self._zoom = False, 1.0
        self._render()

    def zoom_by(self, factor: float) -> None:
        if self._pixmap is None:
            return
        if self._fit:
            self._zoom = self._fit_scale()
            self._fit = False
        self._zoom = max(0.05, min(16.0, self._zoom * factor))
        self._render()

    def _fit_scale(self) -> float:
        if self._pixmap is None or self._pixmap.isNull():
            return 1.0
        area = self.viewport().size()
        w, h = self._pixmap.width(), self._pixmap.height()
        # Small training images are enlarged up to 8× so their content is visible.
        return max(0.01, min(area.width() / w, area.height() / h, 8.0))

    def _render(self) -> None:
        if self._pixmap is None:
            self._label.clear()
            self.zoom_changed.emit("")
            return
        scale = self._fit_scale() if self._fit else self._zoom
        self.setWidgetResizable(self._fit)
        size = self._pixmap.size() * scale
        # Enlarge tiny images with hard pixel edges (a blurred 32 px image misleads about
        # what was trained); otherwise scale smoothly.
        mode = Qt.TransformationMode.FastTransformation if scale >= 3 else Qt.TransformationMode.SmoothTransformation
        self._label.setPixmap(self._pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))
        if not self._fit:
            self._label.resize(self._label.pixmap().size())
        self.zoom_changed.emit(f"{scale * 100:.0f}%" + (" (fit)" if self._fit else ""))

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._fit and self._pixmap is not None:
            self._render()

    def wheelEvent(self, event):
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and self._pixmap is not None:
            self.zoom_by(1.25 if event.angleDelta().y() > 0 else 0.8)
            event.accept()
            return
        super().wheelEvent(event)


def _title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.05)
    label.setFont(font)
    return label


class ImageStatusPane(QWidget):
    """What ListImageHashes' imagestatus says about the selected entries, and the image."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._source: ImageSource | None = None
        self._database: str | None = None
        self._rows: list[EntryRow] = []
        self._loading_for: str | None = None

        self.view = ImageView()
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setObjectName("imageMessage")
        self.message_icon = QLabel()
        self.message_icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        message_box = QWidget()
        message_layout = QVBoxLayout(message_box)
        message_layout.addStretch(1)
        message_layout.addWidget(self.message_icon)
        message_layout.addWidget(self.message)
        message_layout.addStretch(1)
        message_box.setMinimumHeight(70)
        self._message_box = message_box
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(message_box)
        self.stack.setMinimumHeight(70)
        self.stack.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.zoom_in = self._tool("zoom-in", "Zoom in (Ctrl+wheel)", lambda: self.view.zoom_by(1.25))
        self.zoom_out = self._tool("zoom-out", "Zoom out (Ctrl+wheel)", lambda: self.view.zoom_by(0.8))
        self.zoom_fit = self._tool("zoom-fit", "Scale to fit", self.view.fit)
        self.zoom_actual = self._tool("zoom-actual", "Actual size (100%)", self.view.actual_size)
        self.zoom_label = QLabel()
        self.view.zoom_changed.connect(self.zoom_label.setText)
        zoom_row = QHBoxLayout()
        zoom_row.setContentsMargins(0, 0, 0, 0)
        zoom_row.addWidget(_title("Image status"))
        zoom_row.addStretch(1)
        zoom_row.addWidget(self.zoom_label)
        for b in (self.zoom_out, self.zoom_in, self.zoom_fit, self.zoom_actual):
            zoom_row.addWidget(b)

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.identifier = ElidedLabel()
        self.label = self._value()
        self.status = self._value()
        self.hasimagedata = self._value()
        self.counts = self._value()
        self.image_info = self._value()
        self.phash = self._value()
        self.phash.setFont(mono)
        self.grid = PhashGrid(cell_px=12)
        self.note = WrappingLabel(PHASH_NOTE)
        self.note.setObjectName("phashNote")
        note_font = self.note.font()
        note_font.setPointSizeF(note_font.pointSizeF() * 0.9)
        self.note.setFont(note_font)
        self.note.setForegroundRole(self.note.palette().ColorRole.PlaceholderText)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(1)
        form.addRow("Identifier", self.identifier)
        form.addRow("Label", self.label)
        form.addRow("Status", self.status)
        form.addRow("hasimagedata", self.hasimagedata)
        form.addRow("Counts", self.counts)
        form.addRow("Image", self.image_info)
        form.addRow("pHash", self.phash)
        # The note beside the grid, across both columns: under it, it made the pane too
        # tall for a 600-pixel screen (issue 14).
        bits = QHBoxLayout()
        bits.setSpacing(8)
        bits.addWidget(self.grid, 0, Qt.AlignmentFlag.AlignTop)
        bits.addWidget(self.note, 1)
        form.addRow(bits)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(zoom_row)
        layout.addWidget(self.stack, 1)
        layout.addLayout(form)
        self.show_rows([])

    def _tool(self, name, tip, slot) -> QToolButton:
        b = QToolButton()
        set_icon(b, name)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.clicked.connect(slot)
        return b

    def _value(self) -> QLabel:
        label = WrappingLabel()
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def set_source(self, source: ImageSource | None, database: str | None) -> None:
        self._source = source
        self._database = database

    # -- showing ---------------------------------------------------------------------------

    def show_rows(self, rows: list[EntryRow]) -> None:
        previous = self._rows[0] if len(self._rows) == 1 else None
        self._rows = list(rows)
        if not rows:
            self._message("Select an entry to see its training image and status.")
            for w in (self.identifier, self.label, self.status, self.hasimagedata, self.counts,
                      self.image_info, self.phash):
                w.setText("—")
            self.grid.set_hashes([])
            return
        if len(rows) == 1:
            self._show_one(rows[0], reload=previous is None or previous != rows[0])
        else:
            self._show_many(rows)

    def _show_one(self, row: EntryRow, reload: bool) -> None:
        self.identifier.setText(row.identifier)
        self.label.setText(row.label)
        self.status.setText("trained")
        self.hasimagedata.setText(_image_data_text(row))
        self.counts.setText(counts_text())
        self.image_info.setText(_image_text(row))
        self.phash.setText(row.phash_text)
        self.grid.set_hashes([row.phash])
        if not row.has_image_data and row.declared_image_data is not None:
            held = "holds" if row.declared_image_data else "does not hold"
            self._message(f"No image here\n\nThis entry came from a Media Server listing, which carries no "
                          f"image and no pHash; the server {held} the image (its hasimagedata). "
                          "Attach images computes the pHash from the image files.", removed=True)
        elif not row.has_image_data:
            self._message("Image data removed\n\nThe hash and its metadata remain; the training "
                          "image was deleted (NullImageHashImageData).", removed=True)
        elif reload or not self.view.has_image:
            self._load_image(row)

    def _show_many(self, rows: list[EntryRow]) -> None:
        n = len(rows)
        self.identifier.setText(f"{n:,} entries selected")
        labels = {r.label for r in rows}
        self.label.setText(labels.pop() if len(labels) == 1 else f"({len(labels)} different labels)")
        self.status.setText("trained")
        stored = sum(r.has_image_data for r in rows)
        self.hasimagedata.setText("true" if stored == n else "false" if stored == 0 else f"true for {stored} of {n}")
        self.counts.setText(counts_text() + " (each)")
        self.image_info.setText("—")
        hashes = [r.phash for r in rows if r.phash is not None]
        unknown = n - len(hashes)
        if not hashes:
            self.phash.setText("not known for any of them")
        elif unknown:
            self.phash.setText(f"not known for {unknown:,} of {n:,}; grid shows the bits the others share")
        elif len(set(hashes)) == 1:
            self.phash.setText(f"{rows[0].phash_hex} (identical)")
        elif n <= 200:
            widest = max(hamming(a, b) for a, b in combinations(hashes, 2))
            self.phash.setText(f"differ in up to {widest} bits; grid shows shared bits")
        else:
            self.phash.setText("grid shows the bits all selected hashes share")
        self.grid.set_hashes(hashes)
        self._loading_for = None
        self._message(f"{n:,} entries selected")

    def _message(self, text: str, removed: bool = False, problem: bool = False) -> None:
        self._loading_for = None
        self.view.set_image(None)
        self.message.setText(text)
        name = "image-off" if removed else "warning" if problem else None
        if name:
            color = self.palette().color(self.palette().ColorRole.PlaceholderText)
            self.message_icon.setPixmap(icon(name, color).pixmap(48, 48))
        else:
            self.message_icon.clear()
        self.message_icon.setVisible(bool(name))
        self.stack.setCurrentWidget(self._message_box)

    def _load_image(self, row: EntryRow) -> None:
        if self._source is None or self._database is None:
            self._message("No store is open.")
            return
        self._message("Loading image…")
        self._loading_for = row.identifier
        self._source.load(self._database, row.identifier, self._on_image_loaded, self._on_image_failed)

    def _on_image_loaded(self, decoded: DecodedImage) -> None:
        if decoded.identifier != self._loading_for:
            return
        if decoded.removed:
            self._message("Image data removed\n\nThe hash and its metadata remain.", removed=True)
        elif decoded.image is None:
            self._message(decoded.problem or "cannot display image data", problem=True)
        else:
            self._loading_for = None
            self.stack.setCurrentWidget(self.view)
            self.view.set_image(decoded.image)

    def _on_image_failed(self, error: HashlensError) -> None:
        self._message(f"cannot display image data ({error.description})", problem=True)

    @property
    def message_text(self) -> str:
        return self.message.text() if self.stack.currentWidget() is self._message_box else ""

    @property
    def showing_image(self) -> bool:
        return self.stack.currentWidget() is self.view and self.view.has_image


def counts_text() -> str:
    """imagestatus' four counts of one trained entry on one line that wraps only between
    the pairs, as narrow a pane needs (a name never parts from its number)."""
    pairs = (("numimages", 1), ("numtrained", 1), ("numfailed", 0), ("numuntrained", 0))
    return "\u00a0· ".join(f"{name}\u00a0{value}" for name, value in pairs)


def _image_data_text(row: EntryRow) -> str:
    """hasimagedata as Hashlens holds it, and beside it what a Media Server declared."""
    held = "true" if row.has_image_data else "false"
    if row.declared_image_data is None:
        return held
    server = "true" if row.declared_image_data else "false"
    return f"{server} on the Media Server · {'held' if row.has_image_data else 'not held'} by Hashlens"


def _image_text(row: EntryRow) -> str:
    if row.width is None:
        if row.has_image_data:
            return "unknown size"
        return "— (not held by Hashlens)" if row.declared_image_data is not None else "— (image data removed)"
    parts = [f"{row.width} × {row.height} px"]
    if row.image_format:
        parts.append(row.image_format)
    if row.byte_size is not None and row.has_image_data:
        parts.append(_bytes(row.byte_size))
    return ", ".join(parts)


def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


class MetadataPane(QWidget):
    """The selected entry's custom metadata; for several entries, what they share."""

    key_selected = Signal(object)  # str or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = MetadataModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.resizeSection(0, 140)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setForegroundRole(self.summary.palette().ColorRole.PlaceholderText)
        self.buttons = QHBoxLayout()
        self.buttons.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(_title("Metadata"))
        head.addStretch(1)
        head.addLayout(self.buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(head)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.model.modelReset.connect(self._on_selection_changed)
        self.show_rows([])

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        # In a narrow pane the key column gives way to the value, so no column is cut.
        header = self.table.horizontalHeader()
        half = max(40, self.table.viewport().width() // 2)
        if header.sectionSize(0) > half:
            header.resizeSection(0, half)

    def set_actions(self, actions_: list) -> None:
        """Edit actions shown as buttons above the table and on right-click."""
        for action in actions_:
            button = QToolButton()
            button.setDefaultAction(action)
            button.setAutoRaise(True)
            self.buttons.addWidget(button)
            self.table.addAction(action)

    def show_rows(self, rows: list[EntryRow]) -> None:
        selected = self.selected_key()
        items, unshared = shared_metadata(rows)
        self.model.set_items(items)
        if not rows:
            self.summary.setText("Select an entry to see its metadata.")
        elif len(rows) == 1:
            n = len(items)
            self.summary.setText("No custom metadata." if n == 0 else f"{n} item{'s' if n != 1 else ''}, in the order added.")
        else:
            differing = sum(1 for _, v in items if v is DIFFERS)
            text = f"Keys all {len(rows):,} selected entries have: {len(items)}"
            if differing:
                text += f" ({differing} with different values)"
            if unshared:
                text += f"; {unshared} other key{'s' if unshared != 1 else ''} only some have."
            self.summary.setText(text)
        if selected is not None:
            for r, (key, _v) in enumerate(items):
                if key == selected:
                    self.table.selectRow(r)
                    break

    def selected_key(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.key(rows[0].row()) if rows else None

    def select_key(self, key: str) -> bool:
        for r, (k, _v) in enumerate(self.model.items()):
            if k == key:
                self.table.selectRow(r)
                return True
        return False

    def _on_selection_changed(self, *_):
        self.key_selected.emit(self.selected_key())
