"""The image viewport: radiograph with window/level, model-attention overlay, valve box,
distance tool and PACS-style corner text. Reads and writes a ``ViewState``; redraws when it
changes. All geometry lives in image pixel coordinates and goes through one QTransform."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QLinearGradient,
    QMouseEvent,
    QPainter,
    QPen,
    QTextOption,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from .. import DISCLAIMER
from ..geometry import Box
from ..prediction import Prediction
from ..radiograph import Radiograph
from .models import render
from .models.boxes import is_drag, region_box, shown_box, valve_square
from .models.result import shows_valve
from .models.state import ViewState
from .models.viewport import clamp_zoom, corner_texts, distance_text, fit_zoom

BOX_COLOUR = QColor(80, 220, 255)
READER_BOX_COLOUR = QColor(255, 160, 60)  # a region the reader chose, unlike the located box
READER_BOX_LABEL = "region chosen by reader"
MEASURE_COLOUR = QColor(255, 220, 60)
TEXT_COLOUR = QColor(235, 235, 235)


def grey_qimage(array: np.ndarray) -> QImage:
    h, w = array.shape
    return QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Grayscale8).copy()


def rgba_qimage(array: np.ndarray) -> QImage:
    h, w, _ = array.shape
    return QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGBA8888).copy()


class ImageCanvas(QWidget):
    """Left-drag: window/level (Shift: fine). Wheel: zoom at the cursor. Middle-drag or
    Space+drag: pan. With the distance tool on, left-drag measures; with the region tool on,
    left-drag draws the valve region for the model to read; double-click puts a valve-sized
    square there. Esc leaves either tool."""

    measured = Signal(str)
    region_chosen = Signal(object)  # Box in image pixels: the reader's valve region

    def __init__(self, view: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = view
        self.radiograph: Radiograph | None = None
        self.prediction: Prediction | None = None
        self.placeholder = "Open a skull X-ray: File ▸ Open, drag files or a folder here"
        self.measure_mode = False
        self.region_mode = False
        self.measurements: list[tuple[QPointF, QPointF]] = []
        self._region_drag: tuple[QPointF, QPointF] | None = None  # widget points while drawing
        self._indices: np.ndarray | None = None
        self._image: QImage | None = None
        self._overlay: QImage | None = None
        self._drag: tuple[str, QPointF, tuple[float, float]] | None = None
        self._space = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self.setMinimumSize(320, 240)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        view.changed.connect(self._on_view_changed)

    # --- data ----------------------------------------------------------------------------------
    def set_radiograph(self, radiograph: Radiograph | None) -> None:
        self.radiograph = radiograph
        self.prediction = None
        self._overlay = None
        self.measurements.clear()
        self._indices = render.quantize(radiograph.pixels) if radiograph is not None else None
        self._render_image()
        self.update()

    def set_prediction(self, prediction: Prediction | None) -> None:
        self.prediction = prediction
        self._render_overlay()
        self.update()

    def _on_view_changed(self, name: str) -> None:
        if name in ("window_center", "window_width", "invert"):
            self._render_image()
        elif name == "heatmap_opacity":
            self._render_overlay()
        self.update()

    def _render_image(self) -> None:
        if self._indices is None:
            self._image = None
            return
        v = self.view
        self._image = grey_qimage(render.apply_window(self._indices, v.window_center, v.window_width, v.invert))

    def _render_overlay(self) -> None:
        # "No valve found" draws no attention map: it would point at a valve the result does not name.
        heatmap = self.prediction.heatmap if self.prediction is not None and shows_valve(self.prediction) else None
        self._overlay = None if heatmap is None else rgba_qimage(
            render.attention_rgba(heatmap, self.view.heatmap_opacity))

    # --- geometry ------------------------------------------------------------------------------
    def image_size(self) -> tuple[int, int]:
        if self.radiograph is None:
            return (1, 1)
        rows, cols = self.radiograph.shape
        return cols, rows

    def fit_zoom(self) -> float:
        return fit_zoom(self.image_size(), self.view.rotation, (self.width(), self.height()))

    def current_zoom(self) -> float:
        return self.view.zoom if self.view.zoom is not None else self.fit_zoom()

    def transform(self) -> QTransform:
        """Image pixel coordinates → widget coordinates."""
        w, h = self.image_size()
        z = self.current_zoom()
        t = QTransform()
        t.translate(self.width() / 2.0 + self.view.pan[0], self.height() / 2.0 + self.view.pan[1])
        t.rotate(self.view.rotation)
        t.scale(-z if self.view.flip_horizontal else z, -z if self.view.flip_vertical else z)
        t.translate(-w / 2.0, -h / 2.0)
        return t

    def to_image(self, point: QPointF) -> QPointF:
        inverse, _ = self.transform().inverted()
        return inverse.map(point)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        if self.radiograph is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        fixed = self.to_image(anchor)
        self.view.zoom = clamp_zoom(self.current_zoom() * factor)
        moved = self.transform().map(fixed)
        px, py = self.view.pan
        self.view.pan = (px + anchor.x() - moved.x(), py + anchor.y() - moved.y())

    # --- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self._image is None:
            painter.setPen(QColor(150, 150, 150))
            # wrapped inside the viewport (a long file name or error breaks anywhere if it must)
            option = QTextOption(Qt.AlignmentFlag.AlignCenter)
            option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
            painter.drawText(QRectF(self.rect()).adjusted(16, 16, -16, -32), self.placeholder, option)
            self._draw_disclaimer(painter)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.current_zoom() < 2.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        t = self.transform()
        painter.setTransform(t)
        w, h = self.image_size()
        painter.drawImage(QRectF(0, 0, w, h), self._image)
        if self._overlay is not None and self.view.show_heatmap:
            painter.drawImage(QRectF(0, 0, w, h), self._overlay)
        box = self.valve_box()
        by_reader = self.prediction is not None and self.prediction.box_source == "reader"
        colour = READER_BOX_COLOUR if by_reader else BOX_COLOUR
        if box is not None and self.view.show_box:
            pen = QPen(colour, 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(QRectF(box.x0, box.y0, box.width, box.height))
        painter.resetTransform()
        if box is not None and self.view.show_box:
            corner = t.mapRect(QRectF(box.x0, box.y0, box.width, box.height)).topLeft()
            label = READER_BOX_LABEL if by_reader else "valve"
            # kept inside the viewport, clear of the colour bar on its right
            right = self.width() - 44 - painter.fontMetrics().horizontalAdvance(label)
            x = max(2.0, min(corner.x() + 2, float(right)))
            y = max(float(painter.fontMetrics().ascent() + 2), corner.y() - 5)
            painter.setPen(QColor(0, 0, 0, 220))  # a shadow: readable over bright bone too
            painter.drawText(QPointF(x + 1, y + 1), label)
            painter.setPen(colour)
            painter.drawText(QPointF(x, y), label)
        self._draw_region_drag(painter)
        self._draw_measurements(painter, t)
        if self.view.show_corner_text:
            self._draw_corner_text(painter)
        if self._overlay is not None and self.view.show_heatmap:
            self._draw_colour_bar(painter)
        self._draw_disclaimer(painter)

    def valve_box(self) -> Box | None:
        """The model's box when it marks a valve-sized region; a box over most of the image
        (whole-image model without a located valve) would claim a location it does not know.
        A region the reader chose is always shown, whatever its size."""
        return shown_box(self.prediction, self.radiograph.shape) if self.radiograph is not None else None

    def _shadow_text(self, painter: QPainter, rect: QRectF, flags: int, text: str) -> None:
        painter.setPen(QColor(0, 0, 0, 220))
        painter.drawText(rect.translated(1, 1), flags, text)
        painter.setPen(TEXT_COLOUR)
        painter.drawText(rect, flags, text)

    def _draw_corner_text(self, painter: QPainter) -> None:
        if self.radiograph is None:
            return
        font = QFont(painter.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        painter.setFont(font)
        area = QRectF(self.rect()).adjusted(8, 6, -8, -24)
        top_left, top_right, bottom_left, bottom_right = corner_texts(
            self.radiograph.meta, self.radiograph.shape, self.view, self.current_zoom())
        a = Qt.AlignmentFlag
        self._shadow_text(painter, area, a.AlignLeft | a.AlignTop, top_left)
        self._shadow_text(painter, area, a.AlignRight | a.AlignTop, top_right)
        self._shadow_text(painter, area, a.AlignLeft | a.AlignBottom, bottom_left)
        self._shadow_text(painter, area, a.AlignRight | a.AlignBottom, bottom_right)

    def _draw_colour_bar(self, painter: QPainter) -> None:
        bar = QRectF(self.width() - 30, self.height() / 2 - 90, 12, 180)
        gradient = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        colours = render.attention_colours(9)
        for i, (r, g, b) in enumerate(colours):
            gradient.setColorAt(i / 8.0, QColor(int(r), int(g), int(b)))
        painter.fillRect(bar, gradient)
        painter.setPen(QColor(200, 200, 200))
        painter.drawRect(bar)
        a = Qt.AlignmentFlag
        self._shadow_text(painter, QRectF(bar.center().x() - 26, bar.top() - 18, 52, 16), a.AlignCenter, "high")
        self._shadow_text(painter, QRectF(bar.center().x() - 26, bar.bottom() + 2, 52, 16), a.AlignCenter, "low")
        painter.save()
        painter.translate(bar.left() - 4, bar.center().y())
        painter.rotate(-90)
        self._shadow_text(painter, QRectF(-80, -14, 160, 14), a.AlignCenter, "model attention")
        painter.restore()

    def _draw_disclaimer(self, painter: QPainter) -> None:
        rect = QRectF(0, self.height() - 20, self.width(), 18)
        text_width = painter.fontMetrics().horizontalAdvance(DISCLAIMER) + 16
        painter.fillRect(QRectF((self.width() - text_width) / 2, rect.top(), text_width, rect.height()),
                         QColor(0, 0, 0, 190))  # readable over bright anatomy too
        painter.setPen(QColor(255, 200, 120))
        painter.drawText(rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, DISCLAIMER)

    def _draw_region_drag(self, painter: QPainter) -> None:
        if self._region_drag is None:
            return
        pen = QPen(READER_BOX_COLOUR, 1.5, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(*self._region_drag).normalized())

    def _draw_measurements(self, painter: QPainter, t: QTransform) -> None:
        pen = QPen(MEASURE_COLOUR, 2)
        for start, end in self.measurements:
            a, b = t.map(start), t.map(end)
            painter.setPen(pen)
            painter.drawLine(a, b)
            painter.drawEllipse(a, 3, 3)
            painter.drawEllipse(b, 3, 3)
            self._shadow_text(painter, QRectF(b.x() + 6, b.y() - 8, 340, 36),
                              Qt.AlignmentFlag.AlignLeft, self.describe_distance(start, end))

    def describe_distance(self, start: QPointF, end: QPointF) -> str:
        """Length with the calibration it rests on, never passed off as anatomical size."""
        spacing = self.radiograph.meta.pixel_spacing if self.radiograph else None
        return distance_text(end.x() - start.x(), end.y() - start.y(), spacing)

    # --- interaction ---------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._drag = ("pan", pos, self.view.pan)
        elif button == Qt.MouseButton.LeftButton and self.region_mode and self.radiograph is not None:
            self._region_drag = (pos, pos)
            self._drag = ("region", pos, (0.0, 0.0))
        elif button == Qt.MouseButton.LeftButton and self.measure_mode and self.radiograph is not None:
            point = self.to_image(pos)
            self.measurements.append((point, point))
            self._drag = ("measure", pos, (0.0, 0.0))
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("window", pos, (self.view.window_center, self.view.window_width))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            return
        kind, origin, start = self._drag
        pos = event.position()
        dx, dy = pos.x() - origin.x(), pos.y() - origin.y()
        if kind == "pan":
            self.view.pan = (start[0] + dx, start[1] + dy)
        elif kind == "measure":
            first = self.measurements[-1][0]
            self.measurements[-1] = (first, self.to_image(pos))
            self.update()
        elif kind == "region":
            self._region_drag = (origin, pos)
            self.update()
        else:
            step = 0.0005 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.003
            self.view.set_window(start[0] + dy * step, start[1] + dx * step)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag and self._drag[0] == "measure" and self.measurements:
            start, end = self.measurements[-1]
            self.measured.emit(self.describe_distance(start, end).replace("\n", " "))
        if self._drag and self._drag[0] == "region":
            self._finish_region(self._drag[1], event.position())
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """Double-click on the valve: a valve-sized square around the point is read."""
        if event.button() != Qt.MouseButton.LeftButton or self.radiograph is None or self.measure_mode:
            super().mouseDoubleClickEvent(event)
            return
        point = self.to_image(event.position())
        rows, cols = self.radiograph.shape
        if not (0 <= point.x() < cols and 0 <= point.y() < rows):
            return
        self._drag = None
        self.region_chosen.emit(valve_square(point.x(), point.y(), self.radiograph.shape,
                                             self.radiograph.meta.pixel_spacing))

    def _finish_region(self, start: QPointF, end: QPointF) -> None:
        """A drawn rectangle (image pixels, clipped to the image) is read; a click is not."""
        self._region_drag = None
        self.update()
        if self.radiograph is None:
            return
        if not is_drag(end.x() - start.x(), end.y() - start.y()):
            return
        corners = [self.to_image(p) for p in (start, end, QPointF(start.x(), end.y()), QPointF(end.x(), start.y()))]
        box = region_box([(c.x(), c.y()) for c in corners], self.radiograph.shape)
        if box is not None:
            self.region_chosen.emit(box)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps, event.position())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
        elif event.key() == Qt.Key.Key_Escape:
            self.measure_mode = False
            self.region_mode = False
            self._region_drag = None
            self.measurements.clear()
            self.update()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
        super().keyReleaseEvent(event)

