"""The zoomed valve with the reading-aid dial on top. Drag moves the dial, the wheel turns it
(Shift: fine), right-click (or Ctrl+click) marks where the indicator points; the dial then
names the setting there. Keys [ ] turn, M mirrors, G shows/hides (bound in the window)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QRegion,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from ..geometry import Box
from ..radiograph import Radiograph
from .canvas import grey_qimage
from .dial_labels import draw_labels, place_labels
from .models.boxes import zoom_region
from .models.dial import (
    angle_towards,
    dial_caption,
    dial_marks,
    dial_settings,
    ray_point,
    reading_text,
)
from .models.loupe import LoupeState, auto_window, loupe_pixels
from .models.result import ZOOM_EMPTY_TEXT
from .models.state import DialState, ViewState

DIAL_COLOUR = QColor(120, 230, 140)
INDICATOR_COLOUR = QColor(255, 210, 60)


class ValveView(QWidget):
    reading_changed = Signal(str)
    loupe_changed = Signal()  # magnification, pan or the loupe's own window changed

    def __init__(self, view: ViewState, dial: DialState, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = view
        self.dial = dial
        self.template: Any = None
        self._image: QImage | None = None
        self._image_key: tuple | None = None
        self._pixels: np.ndarray | None = None  # the film (grey 0..1), shared with the radiograph
        self.loupe = LoupeState()
        self._drag: tuple[QPointF, tuple[float, float]] | None = None
        self._loupe_drag: tuple[str, QPointF, tuple[float, float]] | None = None
        self._exporting = False
        self.empty_text = ZOOM_EMPTY_TEXT  # what the pane says while no valve is zoomed
        self.setMinimumSize(220, 220)
        self.setToolTip("Zoomed valve with the reading dial: drag to move, wheel or [ ] to turn, "
                        "M to mirror, right-click where the indicator points, G to hide. Loupe: Ctrl+wheel "
                        "magnifies, middle-drag or Alt+drag pans, Shift+drag sets its own window, double-click fits")
        view.changed.connect(self._on_view_changed)
        dial.changed.connect(lambda name: self.update())

    def heightForWidth(self, width: int) -> int:
        return width

    def hasHeightForWidth(self) -> bool:
        return True

    def set_valve(self, radiograph: Radiograph | None, box: Box | None, empty_text: str | None = None) -> None:
        """Show a square around ``box`` (1.6× its size) at first, the loupe at its fit with the
        image's window; None clears, and the pane then says ``empty_text`` (by default that the
        zoomed valve appears once the model has found it)."""
        self.empty_text = empty_text or ZOOM_EMPTY_TEXT
        if radiograph is None or box is None:
            self._pixels = None
        else:
            self._pixels = radiograph.pixels
            self.loupe.fit(*zoom_region(box, radiograph.shape))
            self.loupe.window = None
        self._render()
        self.update()
        self.loupe_changed.emit()

    def has_valve(self) -> bool:
        """A zoomed valve is shown (the model found or attended to one)."""
        return self._pixels is not None

    # --- loupe ---------------------------------------------------------------------------------
    def magnify(self, factor: float, anchor: tuple[float, float] = (0.5, 0.5)) -> None:
        if self._pixels is None:
            return
        self.loupe.zoom(factor, self._square().width(), anchor)
        self._loupe_moved()

    def fit_loupe(self) -> None:
        self.loupe.span = self.loupe.region_span
        if self._pixels is not None:
            self.loupe.zoom(1.0, self._square().width())
        self._loupe_moved()

    def auto_window(self) -> None:
        if self._pixels is not None:
            self.loupe.window = auto_window(self._pixels, self.loupe)
            self._loupe_moved()

    def follow_window(self) -> None:
        self.loupe.window = None
        self._loupe_moved()

    def loupe_view(self) -> list[float] | None:
        """The part of the film shown: centre x, y and span in film pixels (kept with the dial)."""
        if self._pixels is None:
            return None
        return [self.loupe.center[0], self.loupe.center[1], self.loupe.span]

    def set_loupe_view(self, view: list[float] | None) -> None:
        """Show the part of the film ``loupe_view`` gave (the dial then stands where it stood over it)."""
        if self._pixels is None or not view or len(view) != 3 or not view[2] > 0:
            return
        self.loupe.center, self.loupe.span = (float(view[0]), float(view[1])), float(view[2])
        self.loupe.zoom(1.0, self._square().width())  # within the loupe's limits
        self._loupe_moved()

    def magnification(self) -> float:
        """Screen pixels per film pixel now."""
        return self.loupe.magnification(self._square().width())

    def loupe_text(self) -> str:
        if self._pixels is None:
            return ""
        return f"×{self.magnification():.1f}"

    def _loupe_moved(self) -> None:
        self._render()
        self.update()
        self.loupe_changed.emit()

    def set_template(self, template: Any) -> None:
        self.template = template
        self._emit_reading()
        self.update()

    def _on_view_changed(self, name: str) -> None:
        if name in ("window_center", "window_width", "invert"):
            self._render()
            self.update()

    def _render(self) -> None:
        """Forget the picture; the next paint draws it at the view's size in device pixels."""
        self._image = None
        self._image_key = None

    def _picture(self, side: int) -> QImage | None:
        if self._pixels is None or side <= 0:
            return None
        v = self.view
        window = self.loupe.window or (v.window_center, v.window_width)
        key = (side, self.loupe.center, self.loupe.span, window, v.invert)
        if self._image is None or self._image_key != key:
            self._image = grey_qimage(loupe_pixels(self._pixels, self.loupe, side, window, v.invert))
            self._image_key = key
        return self._image

    # --- geometry ------------------------------------------------------------------------------
    def _square(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _dial_centre(self) -> QPointF:
        sq = self._square()
        return QPointF(sq.left() + self.dial.center[0] * sq.width(), sq.top() + self.dial.center[1] * sq.height())

    def _radius(self) -> float:
        return self._square().width() / 2 * self.dial.scale

    def _point(self, angle_deg: float, radius: float) -> QPointF:
        centre = self._dial_centre()
        return QPointF(*ray_point((centre.x(), centre.y()), angle_deg, radius))

    # --- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        sq = self._square()
        image = self._picture(round(sq.width() * painter.device().devicePixelRatioF()))
        if image is None:
            painter.setPen(QColor(140, 140, 140))
            painter.drawText(QRectF(self.rect()).adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_text)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.drawImage(sq, image)
        if self.dial.visible and dial_settings(self.template):
            self._draw_dial(painter)
        elif self.template is not None and not self._exporting:
            rect = QRectF(0, self.height() - 22, self.width(), 20)
            painter.fillRect(rect, QColor(0, 0, 0, 160))
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "No reading dial for this valve")

    def _draw_dial(self, painter: QPainter) -> None:
        r = self._radius()
        centre = self._dial_centre()
        painter.setPen(QPen(DIAL_COLOUR, 1.5))
        painter.drawEllipse(centre, r, r)
        ticks, labels = dial_marks(self.template, self.dial.rotation, self.dial.mirrored)
        # reference: the inlet direction (12 o'clock of the template)
        inlet = self.dial.rotation
        painter.setPen(QPen(DIAL_COLOUR, 2.5))
        painter.drawLine(self._point(inlet, r), self._point(inlet, r * 1.18))
        painter.setPen(QPen(DIAL_COLOUR, 1.5))
        for a in ticks:
            painter.drawLine(self._point(a, r * 0.88), self._point(a, r))
        # on plates, clear of each other and of the inlet mark's label
        draw_labels(painter, place_labels(centre, r, labels, QFontMetricsF(painter.font())), DIAL_COLOUR)
        if self.dial.indicator_deg is not None:
            painter.setPen(QPen(INDICATOR_COLOUR, 2.5))
            painter.drawLine(centre, self._point(self.dial.indicator_deg, r))
        label = self.reading()
        text = dial_caption(self.template, label, self.dial.mirrored, self._exporting)
        if text is None:
            return
        # the reading carries its tag and caveats: wrap it rather than cut it off
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        height = painter.fontMetrics().boundingRect(0, 0, max(self.width() - 8, 40), 400, int(flags), text).height() + 6
        rect = QRectF(0, self.height() - height - 2, self.width(), height)
        painter.fillRect(rect, QColor(0, 0, 0, 170))
        painter.setPen(INDICATOR_COLOUR if label else QColor(200, 200, 200))
        painter.drawText(rect.adjusted(4, 0, -4, 0), flags, text)

    def reading(self) -> str:
        return reading_text(self.template, self.dial.relative_indicator(), self.dial.mirrored)

    def _emit_reading(self) -> None:
        self.reading_changed.emit(self.reading())

    # --- interaction ---------------------------------------------------------------------------
    def mark_indicator(self, pos: QPointF) -> None:
        centre = self._dial_centre()
        self.dial.indicator_deg = angle_towards((centre.x(), centre.y()), (pos.x(), pos.y()))
        self._emit_reading()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        modifiers = event.modifiers()
        ctrl = modifiers & Qt.KeyboardModifier.ControlModifier
        left = event.button() == Qt.MouseButton.LeftButton
        if event.button() == Qt.MouseButton.MiddleButton or (left and modifiers & Qt.KeyboardModifier.AltModifier):
            self._loupe_drag = ("pan", event.position(), self.loupe.center)
        elif left and modifiers & Qt.KeyboardModifier.ShiftModifier and self._pixels is not None:
            v = self.view
            self._loupe_drag = ("window", event.position(), self.loupe.window or (v.window_center, v.window_width))
        elif event.button() == Qt.MouseButton.RightButton or (left and ctrl):
            self.mark_indicator(event.position())
        elif left:
            self._drag = (event.position(), self.dial.center)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.fit_loupe()

    def _move_loupe(self, event: QMouseEvent) -> None:
        assert self._loupe_drag is not None
        kind, origin, start = self._loupe_drag
        dx, dy = event.position().x() - origin.x(), event.position().y() - origin.y()
        if kind == "pan":
            side = max(1.0, self._square().width())
            self.loupe.center = start
            self.loupe.pan(dx / side, dy / side)
        else:  # the loupe's own window: drag right widens, drag down raises the level
            self.loupe.window = (float(min(max(start[0] + dy * 0.002, -0.5), 1.5)),
                                 float(min(max(start[1] + dx * 0.002, 0.01), 2.0)))
        self._loupe_moved()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._loupe_drag is not None:
            self._move_loupe(event)
            return
        if self._drag is None:
            return
        origin, start = self._drag
        side = max(1.0, self._square().width())
        x = min(max(start[0] + (event.position().x() - origin.x()) / side, 0.0), 1.0)
        y = min(max(start[1] + (event.position().y() - origin.y()) / side, 0.0), 1.0)
        self.dial.center = (x, y)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None
        self._loupe_drag = None

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:  # the loupe, at the cursor
            sq = self._square()
            anchor = ((event.position().x() - sq.left()) / max(sq.width(), 1.0),
                      (event.position().y() - sq.top()) / max(sq.height(), 1.0))
            self.magnify(1.25 ** (event.angleDelta().y() / 120.0), anchor)
            return
        fine = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        self.turn((1.0 if fine else 5.0) * event.angleDelta().y() / 120.0)

    def turn(self, degrees: float) -> None:
        self.dial.rotation = (self.dial.rotation + degrees) % 360.0
        self._emit_reading()

    def mirror(self) -> None:
        self.dial.mirrored = not self.dial.mirrored
        self._emit_reading()

    def render_rgb(self, scale: float = 3.0) -> np.ndarray:
        """What the view shows now, as (h, w, 3) uint8, ``scale`` times its size on screen (the
        zoomed film is drawn from its own pixels, the dial and text sharp at that size)."""
        self._exporting = True
        try:
            return render_widget(self, scale)
        finally:
            self._exporting = False


def render_widget(widget: QWidget, scale: float) -> np.ndarray:
    """``widget`` painted ``scale`` times its size on screen, as (h, w, 3) uint8: the painter
    works in the widget's own coordinates (text, lines and layout as on screen) while pictures
    are drawn from their own pixels at the larger size."""
    scale = max(1.0, float(scale))
    width, height = max(1, round(widget.width() * scale)), max(1, round(widget.height() * scale))
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.setDevicePixelRatio(scale)
    image.fill(QColor(0, 0, 0))
    painter = QPainter(image)
    try:
        widget.render(painter, QPoint(0, 0), QRegion(), QWidget.RenderFlag.DrawChildren)
    finally:
        painter.end()
    image.setDevicePixelRatio(1.0)
    return qimage_to_rgb(image)


def qimage_to_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.bytesPerLine() * h)
    return buffer.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()
