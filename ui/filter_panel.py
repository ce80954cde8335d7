"""The filter panel: its widgets become one immutable ListingQuery, emitted on change."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.domain import Failure, Filter, FilterOp, HashlensError, ListingQuery, parse_phash, phash_to_hex
from app.mediaserver_codec.lists import format_identifier_list, split_identifier_list
from app.mediaserver_codec.names import LIST_IMAGE_HASHES
from ui.icons import set_icon
from ui.theme import current_accents

# Typing pauses this long before the table re-queries, so keystrokes never wait on the store.
DEBOUNCE_MS = 300
DEFAULT_DISTANCE = 8


class FilterPanel(QWidget):
    """Identifier list, label, image data, metadata and pHash-distance filters (AND).

    Emits `query_changed(ListingQuery)` with the database and filters; the window's model
    adds the window and the order. Invalid input shows its message here and emits nothing,
    so the table keeps its last good listing."""

    query_changed = Signal(object)  # ListingQuery
    error_changed = Signal(str)  # "" when the filter is valid

    def __init__(self, parent=None):
        super().__init__(parent)
        self._database: str | None = None
        self._last: ListingQuery | None = None
        self._reference_hex: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)

        self.identifiers = QLineEdit()
        self.identifiers.setPlaceholderText(f"id1,id2,…  (exact, as {LIST_IMAGE_HASHES})")
        self.identifiers.setClearButtonEnabled(True)
        self.identifiers.setToolTip(
            f"Comma-separated identifiers, exactly as {LIST_IMAGE_HASHES}' identifier parameter: "
            "unknown ones are left out, repeats count once. Quote an identifier holding a comma: \"a,b\"."
        )
        self.label_mode = QComboBox()
        self.label_mode.addItem("contains", FilterOp.LABEL_CONTAINS)
        self.label_mode.addItem("equals", FilterOp.LABEL_EQUALS)
        self.label_text = QLineEdit()
        self.label_text.setPlaceholderText("label text")
        self.label_text.setClearButtonEnabled(True)
        self.image_data = QComboBox()
        self.image_data.addItem("any", None)
        self.image_data.addItem("stored", True)
        self.image_data.addItem("removed", False)
        self.meta_key = QComboBox()
        self.meta_key.setEditable(True)
        self.meta_key.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.meta_key.lineEdit().setPlaceholderText("metadata key")
        self.meta_key.lineEdit().setClearButtonEnabled(True)
        self.meta_mode = QComboBox()
        self.meta_mode.addItem("present", FilterOp.META_PRESENT)
        self.meta_mode.addItem("absent", FilterOp.META_ABSENT)
        self.meta_mode.addItem("equals", FilterOp.META_EQUALS)
        self.meta_value = QLineEdit()
        self.meta_value.setPlaceholderText("value")
        self.meta_value.setClearButtonEnabled(True)
        self.near_hash = QLineEdit()
        self.near_hash.setPlaceholderText("pHash, 16 hex digits")
        self.near_hash.setClearButtonEnabled(True)
        self.near_hash.setToolTip(
            "Entries whose pHash differs from this one in at most N bits (Hamming distance). "
            "The pHash is Hashlens's own measure, not Media Server's."
        )
        self.distance = QSpinBox()
        self.distance.setRange(0, 64)
        self.distance.setValue(DEFAULT_DISTANCE)
        self.distance.setPrefix("≤ ")
        self.distance.setSuffix(" bits")
        self.use_selected = QPushButton("Use selected")
        set_icon(self.use_selected, "similar")
        self.use_selected.setEnabled(False)
        self.use_selected.setToolTip("Fill in the pHash of the entry selected in the table")
        self.clear_button = QPushButton("Clear filters")
        set_icon(self.clear_button, "clear")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setObjectName("filterError")
        self.error.hide()

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Identifiers", self.identifiers)
        label_row = QHBoxLayout()
        label_row.addWidget(self.label_mode)
        label_row.addWidget(self.label_text, 1)
        form.addRow("Label", label_row)
        form.addRow("Image data", self.image_data)
        form.addRow("Metadata", self.meta_key)
        meta_row = QHBoxLayout()
        meta_row.addWidget(self.meta_mode)
        meta_row.addWidget(self.meta_value, 1)
        form.addRow("", meta_row)
        form.addRow("Near pHash", self.near_hash)
        # Across both columns, under the pHash field's right edge: beside the labels' column
        # the distance and the button did not fit a sidebar narrower than 290 px (issue 14).
        near_row = QHBoxLayout()
        near_row.addStretch(1)
        near_row.addWidget(self.distance)
        near_row.addWidget(self.use_selected)
        form.addRow(near_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        for edit in (self.identifiers, self.label_text, self.meta_value, self.near_hash):
            edit.textEdited.connect(self._on_typing)
            edit.returnPressed.connect(self.flush)
        self.meta_key.lineEdit().textEdited.connect(self._on_typing)
        self.meta_key.lineEdit().returnPressed.connect(self.flush)
        self.meta_key.activated.connect(self._on_choice)
        for combo in (self.label_mode, self.image_data, self.meta_mode):
            combo.currentIndexChanged.connect(self._on_choice)
        self.distance.valueChanged.connect(self._on_typing)
        self.use_selected.clicked.connect(self._on_use_selected_clicked)
        self.clear_button.clicked.connect(self.clear)
        self._update_enabled()

    # -- what the window calls --------------------------------------------------------------

    @property
    def database(self) -> str | None:
        return self._database

    def set_database(self, name: str | None) -> None:
        """Switch database: emitted at once (no debounce), keeping the filters."""
        self._database = name
        self._last = None
        if name is not None:
            self.flush()

    def set_metadata_keys(self, keys: list[str]) -> None:
        text = self.meta_key.currentText()
        self.meta_key.blockSignals(True)
        self.meta_key.clear()
        self.meta_key.addItems(keys)
        self.meta_key.setEditText(text)
        self.meta_key.blockSignals(False)

    def set_reference(self, phash_hex: str | None) -> None:
        """The selected entry's pHash, offered by 'Use selected entry'."""
        self._reference_hex = phash_hex
        self.use_selected.setEnabled(phash_hex is not None)

    def find_similar(self, phash_hex: str, distance: int | None = None) -> None:
        self.near_hash.setText(phash_hex)
        if distance is not None:
            self.distance.setValue(distance)
        self.flush()

    def focus_filter(self) -> None:
        self.label_text.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.label_text.selectAll()

    def clear(self) -> None:
        """Reset every filter and emit the unfiltered listing."""
        for w in self._widgets():
            w.blockSignals(True)
        self.identifiers.clear()
        self.label_text.clear()
        self.label_mode.setCurrentIndex(0)
        self.image_data.setCurrentIndex(0)
        self.meta_key.setEditText("")
        self.meta_mode.setCurrentIndex(0)
        self.meta_value.clear()
        self.near_hash.clear()
        self.distance.setValue(DEFAULT_DISTANCE)
        for w in self._widgets():
            w.blockSignals(False)
        self._update_enabled()
        self.flush()

    def set_query(self, query: ListingQuery) -> None:
        """Show a query made elsewhere (an audit finding) in the widgets, then emit it."""
        for w in self._widgets():
            w.blockSignals(True)
        self._database = query.database
        self.identifiers.setText(format_identifier_list(query.identifiers) if query.identifiers is not None else "")
        self.label_text.clear()
        self.image_data.setCurrentIndex(0)
        self.meta_key.setEditText("")
        self.meta_value.clear()
        self.near_hash.clear()
        for f in query.filters:
            if f.op in (FilterOp.LABEL_CONTAINS, FilterOp.LABEL_EQUALS):
                self.label_mode.setCurrentIndex(self.label_mode.findData(f.op))
                self.label_text.setText(str(f.value))
            elif f.op is FilterOp.HAS_IMAGE_DATA:
                self.image_data.setCurrentIndex(self.image_data.findData(bool(f.value)))
            elif f.op in (FilterOp.META_PRESENT, FilterOp.META_ABSENT, FilterOp.META_EQUALS):
                self.meta_key.setEditText(f.key or "")
                self.meta_mode.setCurrentIndex(self.meta_mode.findData(f.op))
                self.meta_value.setText("" if f.value is None else str(f.value))
            elif f.op is FilterOp.PHASH_WITHIN:
                self.near_hash.setText(phash_to_hex(f.value))
                self.distance.setValue(int(f.distance))
        for w in self._widgets():
            w.blockSignals(False)
        self._update_enabled()
        self._last = None
        self.flush()

    def query(self) -> ListingQuery:
        """The panel as a validated ListingQuery; raises HashlensError for bad input."""
        if self._database is None:
            raise HashlensError(Failure.PARAM_INVALID, "Choose a database first.", parameter="database")
        filters: list[Filter] = []
        text = self.label_text.text()
        if text:
            # Qt hands back a str-valued enum as a plain str: make it a FilterOp again.
            filters.append(Filter(FilterOp(self.label_mode.currentData()), text))
        if self.image_data.currentData() is not None:
            filters.append(Filter(FilterOp.HAS_IMAGE_DATA, bool(self.image_data.currentData())))
        key = self.meta_key.currentText()
        if key:
            op = FilterOp(self.meta_mode.currentData())
            value = self.meta_value.text() if op is FilterOp.META_EQUALS else None
            filters.append(Filter(op, value, key=key))
        near = self.near_hash.text().strip()
        if near:
            filters.append(Filter(FilterOp.PHASH_WITHIN, parse_phash(near), distance=self.distance.value()))
        ids_text = self.identifiers.text()
        identifiers = tuple(split_identifier_list(ids_text)) if ids_text else None
        if identifiers == ():
            identifiers = None
        return ListingQuery(self._database, identifiers=identifiers, filters=tuple(filters)).validated()

    def flush(self) -> None:
        """Emit now instead of after the typing pause."""
        self._timer.stop()
        self._emit()

    @property
    def error_text(self) -> str:
        return self.error.text()

    # -- internals -----------------------------------------------------------------------------

    def _widgets(self):
        return (self.identifiers, self.label_text, self.label_mode, self.image_data, self.meta_key,
                self.meta_mode, self.meta_value, self.near_hash, self.distance)

    def _on_typing(self, *_):
        self._update_enabled()
        self._timer.start()

    def _on_choice(self, *_):
        self._update_enabled()
        self.flush()

    def _on_use_selected_clicked(self):
        if self._reference_hex:
            self.find_similar(self._reference_hex)

    def _update_enabled(self):
        wants_value = self.meta_mode.currentData() == FilterOp.META_EQUALS.value
        if not wants_value:
            self.meta_value.clear()  # a greyed-out old value reads as if it still filtered
        self.meta_value.setEnabled(wants_value)

    def _emit(self) -> None:
        if self._database is None:
            return
        try:
            query = self.query()
        except HashlensError as exc:
            self._show_error(exc.description)
            return
        self._show_error("")
        if query != self._last:
            self._last = query
            self.query_changed.emit(query)

    def _show_error(self, text: str) -> None:
        if text:
            self.error.setText(text)
            self.error.setStyleSheet(f"color: {current_accents()['error_fg']};")
            self.error.show()
        else:
            self.error.clear()
            self.error.hide()
        self.error_changed.emit(text)
