"""A light chart of throughput over the last minutes, painted with QPainter.

QtCharts is not part of PySide6-Essentials (and would add megabytes to the
installer for one chart), so this widget draws the two series itself:
received as a filled area, sent as a line, on a scale rounded to 1/2/5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop_agent.engine.traffic import RateSample
from tunnel.units import human_rate

DOWN_COLOR = QColor("#2f7fd8")
UP_COLOR = QColor("#e0801f")


def nice_ceiling(value: float) -> float:
    """The axis top for a peak of ``value`` bytes/s: 1, 2 or 5 times a power of ten of
    KB/s, MB/s, … (the units the labels use), and at least 1 KB/s."""
    unit, scaled = 1024.0, max(value, 1024.0) / 1024
    while scaled >= 1000:
        unit, scaled = unit * 1024, scaled / 1024
    power = 10 ** math.floor(math.log10(scaled))
    step = next(step for step in (1, 2, 5, 10) if step * power >= scaled)
    return float(step * power * unit)


class RateChart(QWidget):
    """Received (area) and sent (line) bytes per second; newest at the right edge."""

    def __init__(self, span: float = 600.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.span = span
        self.samples: list[RateSample] = []
        self.now = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Throughput over the last 10 minutes")

    def sizeHint(self) -> QSize:
        return QSize(520, 200)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 120)

    def set_samples(self, samples: Sequence[RateSample], now: float) -> None:
        self.samples = [s for s in samples if s.time >= now - self.span]
        self.now = now
        self.update()

    @property
    def scale(self) -> float:
        """The top of the y axis, in bytes per second."""
        return nice_ceiling(max((max(s.up, s.down) for s in self.samples), default=0.0))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        grid = palette.color(QPalette.ColorRole.Mid)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = painter.fontMetrics()
        left = metrics.horizontalAdvance("000 MB/s") + 10
        plot = QRectF(left, 8, self.width() - left - 10, self.height() - metrics.height() - 18)
        scale = self.scale

        for i in range(5):  # horizontal grid with rate labels
            y = plot.bottom() - plot.height() * i / 4
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DotLine if i else Qt.PenStyle.SolidLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            label = human_rate(scale * i / 4) if i else "0"
            painter.drawText(
                QRectF(0, y - metrics.height() / 2, left - 6, metrics.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        minutes = round(self.span / 60)
        for fraction, label in ((0.0, f"{minutes} min ago"), (0.5, f"{minutes // 2} min ago")):
            x = plot.left() + plot.width() * fraction
            painter.drawText(QPointF(x, self.height() - 6), label)
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + 4, plot.width(), metrics.height() + 4),
            Qt.AlignmentFlag.AlignRight,
            "now",
        )

        def point(when: float, rate: float) -> QPointF:
            x = plot.right() - plot.width() * (self.now - when) / self.span
            return QPointF(x, plot.bottom() - plot.height() * min(rate / scale, 1.0))

        if len(self.samples) >= 2:
            area = QPainterPath(QPointF(point(self.samples[0].time, 0)))
            for sample in self.samples:
                area.lineTo(point(sample.time, sample.down))
            area.lineTo(point(self.samples[-1].time, 0))
            area.closeSubpath()
            fill = QColor(DOWN_COLOR)
            fill.setAlpha(70)
            painter.fillPath(area, fill)
            painter.setPen(QPen(DOWN_COLOR, 1.6))
            painter.drawPolyline([point(s.time, s.down) for s in self.samples])
            painter.setPen(QPen(UP_COLOR, 1.6))
            painter.drawPolyline([point(s.time, s.up) for s in self.samples])
        painter.end()
