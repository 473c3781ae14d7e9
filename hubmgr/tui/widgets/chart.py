"""Line charts of training metrics (loss, eval metrics) on textual-plotext."""

from __future__ import annotations

from typing import Mapping, Sequence

from textual_plotext import PlotextPlot


class MetricsChart(PlotextPlot):
    """A line chart of one or more series that share a step axis.

    Call :meth:`set_series` with ``{name: (steps, values)}``; the chart redraws itself.
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

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title)
        plt.xlabel("step")
        drawn = False
        for name, (xs, ys) in self._series.items():
            if not xs:
                continue
            if len(xs) == 1:
                plt.scatter(xs, ys, label=name, marker="dot")
                plt.xlim(xs[0] - 1, xs[0] + 1)
            else:
                plt.plot(xs, ys, label=name, marker="braille")
            drawn = True
        if not drawn:
            plt.title(f"{self._title} (no data yet)" if self._title else "no data yet")
        self.refresh()
