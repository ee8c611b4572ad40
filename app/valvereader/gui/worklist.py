"""The batch worklist: thumbnail, file or patient, predicted valve, confidence, verdict,
review status; sortable, filterable ("needs review", "not reviewed"), bound to ``Worklist``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..prediction import Verdict
from .models.state import Study, Worklist
from .models.worklist import (
    FILTERS,
    REGION_MARK,
    cell_text,
    matches,
    neighbour,
    shared_start,
    sort_key,
    summary_text,
    tooltip_text,
    without_shared_start,
)

COLUMNS = ("", "File / patient", "Valve", "Conf.", "Verdict", "Review")
COLUMN_WIDTHS = (46, 144, 96, 60, 80, 72)  # px at the start; the valve column stretches
# The panel's width for all of them (plus the table's frame and scroll bar).
PANEL_WIDTH = sum(COLUMN_WIDTHS) + 28
VERDICT_TEXT_COLOURS = {Verdict.CONFIDENT: QColor(120, 210, 150), Verdict.REVIEW: QColor(240, 190, 90),
                        Verdict.UNKNOWN: QColor(240, 120, 130), Verdict.NO_VALVE: QColor(240, 120, 130)}
ModelIndex = QModelIndex | QPersistentModelIndex
HINT_COLOUR = QColor(150, 150, 150)  # a cell that gives a hint, not a result


class WorklistModel(QAbstractTableModel):
    def __init__(self, worklist: Worklist):
        super().__init__()
        self.worklist = worklist
        self._pixmaps: dict[int, QPixmap] = {}
        self.shared_start = 0
        worklist.reset.connect(self._reset)
        worklist.study_changed.connect(self._study_changed)

    def _reset(self) -> None:
        self.beginResetModel()
        self._pixmaps.clear()
        self.shared_start = shared_start([study.path.name for study in self.worklist.studies])
        self.endResetModel()

    def _study_changed(self, row: int) -> None:
        self._pixmaps.pop(row, None)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.worklist.studies)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def _thumbnail(self, row: int, study: Study) -> QPixmap | None:
        if study.thumbnail is None:
            return None
        if row not in self._pixmaps:
            t = study.thumbnail
            image = QImage(t.data, t.shape[1], t.shape[0], t.strides[0], QImage.Format.Format_Grayscale8)
            self._pixmaps[row] = QPixmap.fromImage(image.copy())
        return self._pixmaps[row]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        study = self.worklist.studies[row]
        p = study.prediction
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self._thumbnail(row, study)
        if role == Qt.ItemDataRole.UserRole:  # sort keys
            return sort_key(row, study, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip_text(study, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == 4 and p is not None:
                return VERDICT_TEXT_COLOURS.get(p.verdict)
            if column == 4 and study.error:
                return QColor(240, 120, 130)
            if column == 3 and p is not None and p.verdict is Verdict.UNKNOWN:
                return HINT_COLOUR  # the closest valve's probability: a hint
            return None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        return cell_text(study, column)


class MiddleElided(QStyledItemDelegate):
    """Each line of the cell shortened in its middle to the column's width, the file name
    first losing the start that every file of the batch shares ("…0012_lateral_view.png" for
    composite_patient_0012_lateral_view.png): batches of exported films differ in a few
    characters, which a plain cut in the middle would hide. The whole name is in the tooltip."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        super().initStyleOption(option, index)
        if not option.text:
            return
        style = option.widget.style() if option.widget is not None else None
        margin = (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, option.widget) + 1) * 2 \
            if style is not None else 6
        width = max(8, option.rect.width() - margin - 2)
        metrics = option.fontMetrics
        lines = option.text.replace("\u2028", "\n").split("\n")
        shared = getattr(index.model(), "sourceModel", lambda: None)()
        start = getattr(shared, "shared_start", 0)
        shortened = without_shared_start(lines[0], start)
        if shortened is not None and metrics.horizontalAdvance(lines[0]) > width:
            lines[0] = shortened
        # U+2028: the line break an item view keeps when the text is not wrapped
        option.text = "\u2028".join(metrics.elidedText(line, Qt.TextElideMode.ElideMiddle, width) for line in lines)
        option.features &= ~QStyleOptionViewItem.ViewItemFeature.WrapText


class RegionMarked(QStyledItemDelegate):
    """The valve cell of a study read in the reader's region: the valve's name on one line
    (shortened at its end if need be) and REGION_MARK on the second, so the mark is never
    pushed out of the cell by a long name; other valve cells wrap as before."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        super().initStyleOption(option, index)
        lines = option.text.replace("\u2028", "\n").split("\n")  # Qt shows "\n" as a line separator
        if len(lines) < 2 or lines[-1] != REGION_MARK:
            return
        option.features &= ~QStyleOptionViewItem.ViewItemFeature.WrapText
        width = max(8, option.rect.width() - 8)
        option.text = "\u2028".join(option.fontMetrics.elidedText(line, Qt.TextElideMode.ElideRight, width)
                                    for line in lines)


class WorklistFilter(QSortFilterProxyModel):
    """Sorts and filters the worklist. The study on screen (``keep``) stays listed while it is
    shown even when it stops matching the filter (reviewed under "Not reviewed yet", found
    confident under "Needs review"): were its row to vanish, the highlight would land on
    another study while this one stays on screen, and the next key would decide for a study
    the reader does not see highlighted. It leaves the list when the reader moves on."""

    def __init__(self, model: WorklistModel):
        super().__init__()
        self.setSourceModel(model)
        self.setSortRole(Qt.ItemDataRole.UserRole)
        self.mode = "all"
        self.keep = -1  # source row always listed: the study on screen

    def set_mode(self, mode: str) -> None:
        self.beginFilterChange()
        self.mode = mode if mode in FILTERS else "all"
        self.endFilterChange()

    def set_keep(self, row: int) -> None:
        if row != self.keep:
            self.beginFilterChange()
            self.keep = row
            self.endFilterChange()

    def matches(self, row: int) -> bool:
        """Whether the study in source ``row`` matches the filter (the kept row aside)."""
        return matches(self.sourceModel().worklist.studies[row], self.mode)  # type: ignore[attr-defined]

    def filterAcceptsRow(self, row: int, parent: ModelIndex) -> bool:
        return row == self.keep or self.matches(row)


class WorklistPanel(QWidget):
    """Emits ``activated(row)`` (a source row) when the reader picks a study."""

    activated = Signal(int)

    def __init__(self, worklist: Worklist, parent: QWidget | None = None):
        super().__init__(parent)
        self.worklist = worklist
        self.model = WorklistModel(worklist)
        self.proxy = WorklistFilter(self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show:"))
        self.filter = QComboBox()
        for key, text in FILTERS.items():
            self.filter.addItem(text, key)
        self.filter.currentIndexChanged.connect(lambda _: self.set_filter(self.filter.currentData()))
        row.addWidget(self.filter, 1)
        layout.addLayout(row)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Up/Down belong to the window
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(44)
        self.table.setIconSize(QSize(40, 40))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(24)
        for column, width in enumerate(COLUMN_WIDTHS):
            header.resizeSection(column, width)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.names = MiddleElided(self.table)
        self.table.setItemDelegateForColumn(1, self.names)
        self.valves = RegionMarked(self.table)
        self.table.setItemDelegateForColumn(2, self.valves)
        self.table.clicked.connect(lambda index: self.activated.emit(self.proxy.mapToSource(index).row()))
        layout.addWidget(self.table)
        self.summary = QLabel("")
        self.summary.setObjectName("dim")
        layout.addWidget(self.summary)
        worklist.changed.connect(lambda name: self._on_current() if name == "current" else None)
        worklist.study_changed.connect(self._on_study_changed)
        worklist.reset.connect(self._on_reset)

    def set_filter(self, mode: str) -> None:
        """Show the studies of ``mode``. When the study on screen is not one of them, the first
        that is comes on screen (none matching: the list is empty and nothing is highlighted)."""
        self.proxy.set_keep(-1)
        self.proxy.set_mode(mode)
        index = self.filter.findData(self.proxy.mode)
        if index != self.filter.currentIndex():
            self.filter.setCurrentIndex(index)
        rows = self.visible_rows()
        if not rows:
            self._select_current()
        elif self.worklist.current not in rows:
            self.worklist.current = rows[0]  # → _on_current
        else:
            self._on_current()

    def _on_current(self) -> None:
        current = self.worklist.current
        self.proxy.set_keep(current if 0 <= current < len(self.worklist.studies) else -1)
        self._select_current()

    def _on_study_changed(self, row: int) -> None:
        # the row on screen may have moved (sorted by a column that changed); it stays highlighted
        if row == self.worklist.current:
            self._select_current()
        self._update_summary()

    def _on_reset(self) -> None:
        self.proxy.set_keep(-1)
        self._update_summary()

    def visible_rows(self) -> list[int]:
        """Source rows in the order shown (sorted, filtered)."""
        return [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in range(self.proxy.rowCount())]

    def neighbour(self, delta: int) -> int | None:
        """The source row ``delta`` steps from the current one in the shown order."""
        return neighbour(self.visible_rows(), self.worklist.current, delta)

    def _select_current(self) -> None:
        source = self.model.index(self.worklist.current, 0)
        index = self.proxy.mapFromSource(source)
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)
        else:
            self.table.clearSelection()

    def _update_summary(self) -> None:
        self.summary.setText(summary_text(self.worklist.studies))
