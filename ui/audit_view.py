"""The Audit window: runs an audit off the GUI thread and shows its figures, charts,
groups with their images side by side, findings and change history."""

from __future__ import annotations

import time
from html import escape

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.audits import near as nearmod
from app.audits.audit import AuditCache, run_audit
from app.audits.model import AuditOptions, AuditResult, Group, Level
from app.audits.report import iso, journal_line, write_atomic
from app.domain import Failure, HashlensError, counted
from ui import images
from ui.phash_grid import PhashGrid
from ui.progress_dialog import describe_progress
from ui.workers import CancelToken, Progress, Workers

THUMB_PX = 150
_LEVEL_COLOURS = {Level.ERROR: "#c62828", Level.WARNING: "#b26a00", Level.INFO: "#1f5fa8"}
_ROLE = Qt.ItemDataRole.UserRole


def _thumbnails(store, keys: list[int]) -> dict[int, QImage | None]:
    """A group's images decoded safely and scaled down (on a lane, off the GUI thread)."""
    found: dict[int, QImage | None] = {}
    try:
        blobs = store.images_by_key(keys)
    except HashlensError:
        return {}  # the preview shows "no image"; the audit itself reports damage
    for key in keys:
        data = blobs.get(key)
        try:
            found[key] = images.decode(data, THUMB_PX, "the stored image") if data is not None else None
        except HashlensError:
            found[key] = None
    return found


# Findings of one kind beyond this many are left to the saved report: a tree of 157,000
# notes helps nobody and costs seconds to fill (issue 14).
FINDINGS_SHOWN_PER_KIND = 1000
_SORT_ROLE = Qt.ItemDataRole.UserRole + 7
_LEVEL_WORDS = {Level.ERROR: ("error", "errors"), Level.WARNING: ("warning", "warnings"), Level.INFO: ("note", "notes")}


def level_counts(counts: dict) -> str:
    """'2 errors · 1 warning · 157,000 notes': each count with its noun in the right number."""
    return " · ".join(counted(counts.get(level, 0), *_LEVEL_WORDS[level])
                      for level in (Level.ERROR, Level.WARNING, Level.INFO))


class _SortableItem(QTreeWidgetItem):
    """Sorts by a per-column key (severity, a number) where there is one, else by text."""

    def __lt__(self, other: QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() is not None else 0
        mine, theirs = self.data(column, _SORT_ROLE), other.data(column, _SORT_ROLE)
        if mine is not None and theirs is not None:
            return mine < theirs
        return self.text(column) < other.text(column)


def _save_report(store, result: AuditResult, path: str) -> str:
    from app.audits.html_report import report_thumbnails, to_html

    write_atomic(path, to_html(result, report_thumbnails(store, result)))
    return path


# -- charts ------------------------------------------------------------------------------------


class CoverageChart(QWidget):
    """Metadata coverage: one horizontal bar per key, 0–100 %."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.setMinimumHeight(60)

    def set_rows(self, rows: list[tuple[str, float]]) -> None:
        self.rows = rows[:40]
        self.setMinimumHeight(max(60, 22 * len(self.rows) + 10))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, max(60, 22 * len(self.rows) + 10))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        if not self.rows:
            p.setPen(pal.placeholderText().color())
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No metadata")
            return
        label_w = min(180, self.width() // 3)
        span = max(10, self.width() - label_w - 60)
        bar = QColor("#3d7bd9")
        for i, (label, share) in enumerate(self.rows):
            y = 6 + i * 22
            p.setPen(pal.text().color())
            p.drawText(QRect(4, y, label_w - 8, 18), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       p.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, label_w - 8))
            p.fillRect(label_w, y + 2, span, 14, pal.alternateBase())
            p.fillRect(label_w, y + 2, int(span * max(0.0, min(1.0, share))), 14, bar)
            p.drawText(label_w + span + 6, y + 14, f"{share:.0%}")
        p.end()


class DistanceHistogram(QWidget):
    """Pairs of entries per pHash distance 0–64, the near-duplicate threshold in red."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.counts: tuple[int, ...] = ()
        self.threshold = nearmod.DEFAULT_RADIUS
        self.setMinimumSize(300, 160)

    def set_counts(self, counts, threshold: int) -> None:
        self.counts, self.threshold = tuple(counts), threshold
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        if not self.counts or not any(self.counts):
            p.setPen(pal.placeholderText().color())
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Fewer than two entries")
            return
        left, bottom, top = 36, 20, 8
        w, h = self.width() - left - 8, self.height() - bottom - top
        peak = max(self.counts)
        step = w / 65
        near, far = QColor("#d9534f"), QColor("#3d7bd9")
        for d, c in enumerate(self.counts):
            bar = int(h * c / peak)
            p.fillRect(int(left + d * step), top + h - bar, max(1, int(step) - 1), bar, near if d <= self.threshold else far)
        pen = p.pen()
        pen.setColor(near)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        x = int(left + (self.threshold + 1) * step)
        p.drawLine(x, top, x, top + h)
        p.setPen(pal.text().color())
        p.drawLine(left, top + h, left + w, top + h)
        for d in range(0, 65, 8):
            p.drawText(int(left + d * step), self.height() - 4, str(d))
        p.drawText(2, top + 10, f"{peak:,}")
        p.end()


# -- the window -----------------------------------------------------------------------------------


class AuditWindow(QWidget):
    """Audit a database (or every database when `database` is None). `show_filter`
    emits a ListingQuery whenever a finding or group is clicked, for the main table."""

    show_filter = Signal(object)
    finished = Signal(object)  # AuditResult
    failed = Signal(str)
    cancelled = Signal()
    thumbnails_loaded = Signal()
    report_saved = Signal(str)  # the path written

    def __init__(self, store, database: str | None, parent=None, workers: Workers | None = None):
        super().__init__(parent)
        # Its own window even when the main window is its parent (for lifetime only).
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.store = store
        self.database = database or None
        self.result: AuditResult | None = None
        self.cache = AuditCache()
        # The window's job service; a window opened on its own (tests) makes a private one.
        self._own_workers = workers is None
        self.workers = workers if workers is not None else Workers(self, lanes=("audit", "image"))
        self._kind = f"audit-{id(self)}"  # this window's tickets, apart from any other audit window's
        self._job = None
        self._cancel: CancelToken | None = None
        self._group_items: dict[int, tuple[Group, str | None]] = {}
        self._preview_group: Group | None = None
        self.setWindowTitle(f"Audit — {database}" if database else "Audit — every database")
        self._kinds: dict[str, list[int]] = {}  # each kind's findings, by index into result.findings
        self._overall = [0.0]
        self._build()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel(f"<b>{escape(self.database)}</b>" if self.database else "<b>Every database</b>"))
        top.addSpacing(12)
        top.addWidget(QLabel("Near-duplicates within"))
        self.near_spin = QSpinBox()
        self.near_spin.setRange(0, nearmod.MAX_RADIUS)
        self.near_spin.setValue(nearmod.DEFAULT_RADIUS)
        self.near_spin.setSuffix(" bits")
        self.near_spin.setToolTip("Hamming distance of Hashlens's 64-bit pHash (not Media Server's confidence)")
        top.addWidget(self.near_spin)
        self.images_box = QCheckBox("Decode and re-hash images")
        self.images_box.setChecked(True)
        self.across_box = QCheckBox("Across databases")
        self.across_box.setChecked(True)
        top.addWidget(self.images_box)
        top.addWidget(self.across_box)
        top.addStretch(1)
        # The buttons on a row of their own, so the window fits a small screen (issue 14).
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.run_button = QPushButton("Run audit")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.save_button = QPushButton("Save report…")
        self.save_button.setEnabled(False)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self._on_save_clicked)
        for b in (self.run_button, self.cancel_button, self.save_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("Press Run audit to begin. The audit only reads the store.")
        self.status.setWordWrap(True)

        self.tabs = QTabWidget()
        self.summary_view = QTextBrowser()
        self.summary_view.setOpenLinks(False)
        self.tabs.addTab(self.summary_view, "Summary")

        # Findings grouped by kind, errors first, each kind with its count; a kind's
        # findings are added when it is opened. Sort by a header, show one level.
        self.findings_tree = QTreeWidget()
        self.findings_tree.setHeaderLabels(["Level", "Kind", "Count", "Database", "Finding"])
        self.findings_tree.setUniformRowHeights(True)
        self.findings_tree.setSortingEnabled(True)
        self.findings_tree.itemClicked.connect(self._on_findings_clicked)
        self.findings_tree.itemExpanded.connect(self._on_findings_expanded)
        header = self.findings_tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        fm = self.fontMetrics()
        for column, sample in enumerate(("warning", "near-duplicate-across", "1,000,000", "a database name")):
            self.findings_tree.setColumnWidth(column, fm.horizontalAdvance(sample) + 36)
        self.level_filter = QComboBox()
        for text, level in (("Every level", None), ("Errors", Level.ERROR), ("Warnings", Level.WARNING),
                            ("Notes", Level.INFO)):
            self.level_filter.addItem(text, level)
        self.level_filter.currentIndexChanged.connect(self._on_level_filter_changed)
        self.findings_label = QLabel()
        findings = QWidget()
        fl = QVBoxLayout(findings)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.level_filter)
        bar.addWidget(self.findings_label, 1)
        fl.addLayout(bar)
        fl.addWidget(self.findings_tree)
        self.tabs.addTab(findings, "Findings")

        self.groups_tree = QTreeWidget()
        self.groups_tree.setHeaderLabels(["Group / entry", "Label", "pHash", "Database"])
        self.groups_tree.setUniformRowHeights(True)
        self.groups_tree.itemClicked.connect(self._on_groups_clicked)
        self.preview = QWidget()
        self.preview_layout = QHBoxLayout(self.preview)
        self.preview_layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.preview)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.groups_tree)
        split.addWidget(scroll)
        split.setSizes([300, 220])
        self.tabs.addTab(split, "Duplicates")

        charts = QWidget()
        charts_layout = QVBoxLayout(charts)
        self.chart_database = QComboBox()
        self.chart_database.currentIndexChanged.connect(self._on_chart_database_changed)
        charts_layout.addWidget(self.chart_database)
        charts_layout.addWidget(QLabel("Metadata coverage"))
        self.coverage_chart = CoverageChart()
        charts_layout.addWidget(self.coverage_chart)
        self.histogram_label = QLabel("Pairwise pHash distances")
        charts_layout.addWidget(self.histogram_label)
        self.histogram = DistanceHistogram()
        charts_layout.addWidget(self.histogram, 1)
        chart_scroll = QScrollArea()
        chart_scroll.setWidgetResizable(True)
        chart_scroll.setWidget(charts)
        self.tabs.addTab(chart_scroll, "Charts")

        self.history_tree = QTreeWidget()
        self.history_tree.setHeaderLabels(["When (UTC)", "User", "Action", "Database", "Identifier", "Parameters"])
        self.history_tree.setRootIsDecorated(False)
        self.history_tree.setUniformRowHeights(True)
        self.history_label = QLabel()
        history = QWidget()
        hl = QVBoxLayout(history)
        hl.addWidget(self.history_label)
        hl.addWidget(self.history_tree)
        self.tabs.addTab(history, "History")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self.resize(980, 720)
        self._placed = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            self.place_on_screen()

    def place_on_screen(self) -> None:
        """Open wholly within the screen's available area (issue 14: it opened partly off
        it): at most that size, over the main window's centre when there is one."""
        screen = (self.parentWidget().screen() if self.parentWidget() is not None else None) \
            or self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        frame = self.frameGeometry().size() - self.geometry().size()  # title bar and borders
        width = min(self.width(), area.width() - frame.width())
        height = min(self.height(), area.height() - frame.height())
        self.resize(width, height)
        owner = self.parentWidget().window() if self.parentWidget() is not None else None
        centre = owner.frameGeometry().center() if owner is not None and owner.isVisible() else area.center()
        x = min(max(centre.x() - (width + frame.width()) // 2, area.left()), area.right() + 1 - width - frame.width())
        y = min(max(centre.y() - (height + frame.height()) // 2, area.top()), area.bottom() + 1 - height - frame.height())
        self.move(x, y)

    # -- running ---------------------------------------------------------------------------

    def options(self) -> AuditOptions:
        return AuditOptions(near=self.near_spin.value(), check_images=self.images_box.isChecked(),
                            across=self.across_box.isChecked())

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def run(self) -> None:
        """Start an audit on the audit lane; a newer run makes any older result stale."""
        if self.running:
            return
        stop = self._cancel = CancelToken()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        # One bar for the whole audit, 0–1000; the phase and its own count go in words.
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status.setText("Auditing…")
        store, database, options, cache = self.store, self.database, self.options(), self.cache
        holder: list = []
        progress = self.workers.progress_callback(holder)
        overall = self._overall = [0.0]  # written by the worker, read with each progress report

        def work():
            return run_audit(store, database, options, cache=cache, cancelled=stop,
                             progress=lambda phase, done, total: progress(done, total, phase),
                             overall=lambda fraction: overall.__setitem__(0, fraction))

        self._job = self.workers.submit("audit", work, kind=self._kind, store=store, owner=self,
                                        on_done=self._on_worker_done, on_error=self._on_worker_failed,
                                        on_progress=self._on_worker_progress)
        holder.append(self._job)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _finish_run(self) -> None:
        self._cancel = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_worker_progress(self, progress: Progress) -> None:
        fraction = self._overall[0]
        self.progress.setValue(max(self.progress.value(), int(fraction * 1000)))
        phase = progress.phase or "Auditing"
        if progress.total:
            step = f"{phase}: {progress.done:,} of {progress.total:,} ({progress.done / progress.total:.0%})"
        else:
            step = f"{phase}…"
        self.status.setText(f"{step} · the whole audit {self.progress.value() // 10}% done")
        self.progress.setToolTip(describe_progress(progress.done, progress.total, self._elapsed(), progress.phase))

    def _elapsed(self) -> float:
        job = self._job
        return 0.0 if job is None or job.started is None else time.perf_counter() - job.started

    def _on_worker_done(self, result: AuditResult) -> None:
        self._finish_run()
        self.result = result
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        counts = result.counts()
        reused = f" Reused unchanged results for {', '.join(result.reused)}." if result.reused else ""
        self.status.setText(
            f"Done in {(result.finished_at - result.started_at) / 1000:,.1f} s: "
            f"{level_counts(counts).replace(' · ', ', ')}.{reused}")
        self.save_button.setEnabled(True)
        self._show(result)
        self.finished.emit(result)

    def _on_worker_failed(self, error: HashlensError) -> None:
        self._finish_run()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        message = error.description
        if error.failure is Failure.CANCELLED:
            self.status.setText("Cancelled; nothing was changed.")
            self.cancelled.emit()
        else:
            self.status.setText(message)
            self.failed.emit(message)

    # -- showing a result ---------------------------------------------------------------------

    def _show(self, result: AuditResult) -> None:
        self.summary_view.setHtml(_summary_html(result))
        self._show_findings(result)

        self.groups_tree.clear()
        self._group_items.clear()
        titles = {"bytes": "identical bytes", "phash": "identical pHash", "near": "near-duplicates",
                  "across": "near-duplicates across databases"}
        groups = [(g, db.name) for db in result.databases for g in db.groups] + [(g, None) for g in result.across_groups]
        tops = []
        for n, (g, db_name) in enumerate(groups):
            flag = " · likely mislabel" if g.likely_mislabel else ""
            text = f"{titles[g.kind]} · {g.size:,} entries · ≤ {g.max_distance} bits{flag}"
            top = QTreeWidgetItem([text, "", "", db_name or ", ".join(g.databases)])
            top.setData(0, _ROLE, n)
            for m in g.members:
                child = QTreeWidgetItem([m.identifier, m.label, m.phash_hex + ("" if m.has_image_data else " (no image)"),
                                         m.database])
                child.setData(0, _ROLE, n)
                child.setData(1, _ROLE, m.database)
                top.addChild(child)
            tops.append(top)
            self._group_items[n] = (g, db_name)
        self.groups_tree.addTopLevelItems(tops)
        self.groups_tree.resizeColumnToContents(0)

        self.chart_database.blockSignals(True)
        self.chart_database.clear()
        self.chart_database.addItems([db.name for db in result.databases])
        self.chart_database.blockSignals(False)
        self._on_chart_database_changed(0)

        h = result.history
        self.history_label.setText(
            f"{h.total:,} changes recorded from {iso(h.since) or 'the start'} until {iso(h.until) or 'now'}; "
            f"the last {len(h.latest):,} are listed.")
        self.history_tree.clear()
        rows = []
        for e in reversed(h.latest):
            params = ", ".join(f"{k}={v!r}" for k, v in e.params.items())
            rows.append(QTreeWidgetItem([iso(e.at), e.user, e.action, e.database or "", e.identifier or "", params]))
            rows[-1].setToolTip(5, journal_line(e))
        self.history_tree.addTopLevelItems(rows)

    def _show_findings(self, result: AuditResult) -> None:
        """One row per kind (errors first, then by count), its findings added on opening."""
        tree = self.findings_tree
        tree.setSortingEnabled(False)
        tree.clear()
        self._kinds = {}
        for index, f in enumerate(result.findings):
            self._kinds.setdefault(f.kind, []).append(index)
        tops = []
        for kind, indexes in self._kinds.items():
            first = result.findings[indexes[0]]
            level = first.level
            databases = sorted({result.findings[i].database or "store" for i in indexes})
            example = first.message if len(indexes) == 1 else f"{len(indexes):,} findings, e.g. {first.message}"
            top = _SortableItem([level.label, kind, f"{len(indexes):,}",
                                 databases[0] if len(databases) == 1 else f"{len(databases):,} databases", example])
            top.setData(0, _SORT_ROLE, int(level))
            top.setData(2, _SORT_ROLE, len(indexes))
            top.setData(1, _ROLE, kind)
            top.setForeground(0, QColor(_LEVEL_COLOURS[level]))
            top.setToolTip(4, first.message)
            top.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            tops.append(top)
        tree.addTopLevelItems(tops)
        tree.setSortingEnabled(True)
        # Errors first, and within a level the commonest kind first.
        tree.sortItems(2, Qt.SortOrder.DescendingOrder)
        tree.sortItems(0, Qt.SortOrder.DescendingOrder)
        self._on_level_filter_changed()

    def _on_findings_expanded(self, top: QTreeWidgetItem) -> None:
        kind = top.data(1, _ROLE)
        if self.result is None or kind is None or top.childCount():
            return
        indexes = self._kinds.get(kind, [])
        children = []
        for index in indexes[:FINDINGS_SHOWN_PER_KIND]:
            f = self.result.findings[index]
            child = _SortableItem([f.level.label, f.kind, f"{f.count:,}", f.database or "store", f.message])
            child.setData(0, _ROLE, index)
            child.setData(0, _SORT_ROLE, int(f.level))
            child.setData(2, _SORT_ROLE, f.count)
            child.setForeground(0, QColor(_LEVEL_COLOURS[f.level]))
            child.setToolTip(4, f.message + ("\nClick to show these entries in the table." if f.query else ""))
            children.append(child)
        if len(indexes) > FINDINGS_SHOWN_PER_KIND:
            more = QTreeWidgetItem(["", "", "", "", f"…and {len(indexes) - FINDINGS_SHOWN_PER_KIND:,} more of this "
                                    "kind: Save report… lists every one."])
            children.append(more)
        top.addChildren(children)

    def _on_level_filter_changed(self, *_):
        wanted = self.level_filter.currentData()
        tree = self.findings_tree
        shown = 0
        for i in range(tree.topLevelItemCount()):
            top = tree.topLevelItem(i)
            hide = wanted is not None and top.data(0, _SORT_ROLE) != int(wanted)
            top.setHidden(hide)
            if not hide:
                shown += len(self._kinds.get(top.data(1, _ROLE), []))
        kinds = sum(not tree.topLevelItem(i).isHidden() for i in range(tree.topLevelItemCount()))
        self.findings_label.setText(f"{counted(shown, 'finding')} of {counted(kinds, 'kind')}"
                                    if self.result is not None else "")

    def _on_chart_database_changed(self, index: int) -> None:
        if self.result is None or not 0 <= index < len(self.result.databases):
            self.coverage_chart.set_rows([])
            self.histogram.set_counts((), self.near_spin.value())
            return
        db = self.result.databases[index]
        self.coverage_chart.set_rows([(p.key, p.coverage) for p in db.metadata])
        self.histogram.set_counts(db.distance_histogram, self.result.options.near)
        sampled = "" if db.histogram_sample >= db.summary.entries else f" (a sample of {db.histogram_sample:,} entries)"
        self.histogram_label.setText(f"Pairwise pHash distances{sampled}; red: within {self.result.options.near} bits")

    # -- clicks -------------------------------------------------------------------------------

    def _on_findings_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        index = item.data(0, _ROLE)
        if self.result is None:
            return
        if index is None:
            kind = item.data(1, _ROLE)
            indexes = self._kinds.get(kind, []) if kind is not None else []
            if len(indexes) != 1:
                return  # a kind's row opens and closes; its findings filter the table
            index = indexes[0]
        finding = self.result.findings[index]
        if finding.query is not None:
            self.show_filter.emit(finding.query)

    def _on_groups_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        group, db_name = self._group_items[item.data(0, _ROLE)]
        # A member's own database; for a group across databases, the audited one.
        target = item.data(1, _ROLE) or (self.database if self.database in group.databases else db_name)
        self._load_preview(group)
        self.show_filter.emit(group.query(target if target in group.databases else None))

    def _load_preview(self, group: Group) -> None:
        self._preview_group = group
        while self.preview_layout.count():
            w = self.preview_layout.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        keys = [m.key for m in group.members[:24] if m.has_image_data]
        store = self.store
        if keys:
            self.workers.submit("image", lambda: _thumbnails(store, keys), kind=self._kind + "-thumbs", store=store,
                                owner=self, on_done=self._on_worker_thumbs, on_error=lambda _e: self._on_worker_thumbs({}))
        else:
            self.workers.invalidate(self._kind + "-thumbs")  # an older group's images must not arrive now
            self._on_worker_thumbs({})

    def _on_worker_thumbs(self, thumbs: dict) -> None:
        group = self._preview_group
        first = group.members[0].phash
        for m in group.members[:24]:
            cell = QFrame()
            cell.setFrameShape(QFrame.Shape.StyledPanel)
            box = QVBoxLayout(cell)
            image = thumbs.get(m.key)
            if image is not None:
                pic = QLabel()
                pic.setObjectName("thumbnail")
                pic.setPixmap(QPixmap.fromImage(image))
                pic.setFixedSize(THUMB_PX, THUMB_PX)
                pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
                box.addWidget(pic)
            else:
                why = "no image data" if not m.has_image_data else "image does not decode"
                box.addWidget(QLabel(why))
                grid = PhashGrid(cell_px=12)
                grid.set_hashes([first, m.phash])
                grid.setObjectName("bitgrid")
                box.addWidget(grid)
            text = QLabel(f"<b>{escape(m.identifier)}</b><br>{escape(m.label)}<br><tt>{m.phash_hex}</tt> · "
                          f"{m.bits_from(first)}")
            text.setWordWrap(True)
            text.setMaximumWidth(THUMB_PX + 20)
            box.addWidget(text)
            self.preview_layout.addWidget(cell)
        self.thumbnails_loaded.emit()

    def _on_save_clicked(self) -> None:
        if self.result is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save audit report", "audit.html", "HTML report (*.html)")
        if path:
            self.save_report(path)

    def save_report(self, path: str) -> None:
        """Write the self-contained HTML report on the audit lane (thumbnails need the store)."""
        if self.result is None:
            return
        store, result = self.store, self.result
        self.workers.submit("audit", lambda: _save_report(store, result, path), store=store, owner=self,
                            on_done=self._on_report_saved,
                            on_error=lambda e: (self.status.setText(e.description), self.failed.emit(e.description)))

    def _on_report_saved(self, path: str) -> None:
        self.status.setText(f"Report saved to {path}")
        self.report_saved.emit(path)

    # -- closing -----------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel any running work and wait briefly for it; nothing arrives afterwards."""
        self.cancel()
        self.workers.invalidate(self._kind)
        self.workers.invalidate(self._kind + "-thumbs")
        if self._own_workers:
            self.workers.shutdown(wait_ms)
        else:
            self.workers.cancel_and_wait(self._job, self._cancel, wait_ms)
        self._finish_run()


def _summary_html(result: AuditResult) -> str:
    counts = result.counts()
    parts = [
        f"<h3>{escape(result.scope) if result.scope else 'Every database'}</h3>",
        f"<p>Store {escape(result.store)} · Hashlens {escape(result.version)} · {iso(result.started_at)}<br>"
        f"Near-duplicates within {result.options.near} of 64 bits (Hashlens's pHash; not Media Server's measure).</p>",
        "<p>" + " · ".join(f"<b style='color:{_LEVEL_COLOURS[level]}'>{counted(counts.get(level, 0), *_LEVEL_WORDS[level])}</b>"
                           for level in (Level.ERROR, Level.WARNING, Level.INFO)) + "</p>",
    ]
    for db in result.databases:
        s, i = db.summary, db.integrity
        totals = dict(db.group_totals)
        rows = [
            ("Entries", f"{s.entries:,}"),
            ("With / without image data", f"{s.with_image_data:,} / {s.without_image_data:,}"),
            ("Labels generated / empty / shared", f"{s.labels_auto:,} / {s.labels_missing:,} / {s.labels_shared:,}"),
            ("Identifiers generated / awkward / near the limit",
             f"{s.identifiers_auto:,} / {s.identifiers_awkward:,} / {s.identifiers_near_limit:,}"),
            ("Formats", ", ".join(f"{escape(k)} {v:,}" for k, v in s.formats) or "-"),
            ("Duplicate groups: bytes / pHash / near",
             f"{totals.get('bytes', 0):,} / {totals.get('phash', 0):,} / {totals.get('near', 0):,}"),
            ("Images checked", "skipped" if i.images_skipped else f"{i.images_checked:,}"),
            ("Undecodable / pHash mismatches / degenerate",
             f"{i.undecodable:,} / {i.phash_mismatches:,} / {i.degenerate_hashes:,}"),
        ]
        parts.append(f"<h4>{escape(db.name)}</h4><table cellspacing='0' cellpadding='3'>")
        parts += [f"<tr><td>{k}</td><td align='right'>{v}</td></tr>" for k, v in rows]
        parts.append("</table>")
    c = result.store_checks
    parts.append(f"<h4>Store</h4><p>{escape(c.backend)}, schema version {c.schema_version}; "
                 f"integrity {escape(c.integrity_status)} ({escape(c.integrity_check)})</p>")
    return "".join(parts)
