"""Line charts of training metrics (loss, eval metrics) on textual-plotext, with the legend under the plot."""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

#: Series colours, by name in both plotext and rich (so the legend's swatch matches its line).
COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")


class MetricsChart(PlotextPlot):
    """A line chart of one or more series that share a step axis.

    Call :meth:`set_series` with ``{name: (steps, values)}``; the chart redraws itself. The x axis spans
    every series (a single eval point does not narrow it), and the legend is a line of its own under the
    plot, never over the data.
    """

    DEFAULT_CSS = """
    MetricsChart {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._title = title
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._legend: list[tuple[str, str, bool]] = []  # (name, colour, a single point)
        self._x_range: tuple[float, float] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def set_series(self, series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> None:
        self._series = {
            name: ([float(x) for x, y in zip(xs, ys) if y is not None], [float(y) for y in ys if y is not None])
            for name, (xs, ys) in series.items()
        }
        self._draw()

    @property
    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        return self._series

    @property
    def x_range(self) -> tuple[float, float] | None:
        """The steps the x axis spans (None when nothing is drawn)."""
        return self._x_range

    def legend(self) -> Text:
        """The legend line: a swatch in each series' colour and its name."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, color, single) in enumerate(self._legend):
            if i:
                text.append("   ")
            text.append("●" if single else "━━", style=f"bold {color}")
            text.append(f" {name}")
        return text

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title)
        plt.xlabel("step")
        self._legend = []
        drawn = [(name, xs, ys) for name, (xs, ys) in self._series.items() if xs]
        for i, (name, xs, ys) in enumerate(drawn):
            color = COLORS[i % len(COLORS)]
            if len(xs) == 1:
                plt.scatter(xs, ys, marker="dot", color=color)
            else:
                plt.plot(xs, ys, marker="braille", color=color)
            self._legend.append((name, color, len(xs) == 1))
        if drawn:
            lo = min(min(xs) for _, xs, _ in drawn)
            hi = max(max(xs) for _, xs, _ in drawn)
            if lo == hi:
                lo, hi = lo - 1, hi + 1
            self._x_range = (lo, hi)
            plt.xlim(lo, hi)
        else:
            self._x_range = None
            plt.title(f"{self._title} (no data yet)" if self._title else "no data yet")
        self.refresh()

    def render(self) -> RenderResult:
        """The plot, one row shorter when there is a legend, with the legend on that last row."""
        legend = self.legend() if self._legend else None
        width, height = self.size.width, max(1, self.size.height - (1 if legend is not None else 0))
        self._plot.plotsize(width, height)
        self._plot._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
        self._plot.theme(self._get_plotext_theme_name(self.app.theme))
        plot = Text.from_ansi(self._plot.build())
        if legend is None:
            return plot
        if not plot.plain.endswith("\n"):
            plot.append("\n")
        plot.append_text(legend)
        return plot
