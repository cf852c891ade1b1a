"""``LiveCharts``: per provider over time — latency p50/p95 and TTFT, tokens/s, cumulative tokens
and cost — and retries and errors by class, in one plotly ``FigureWidget``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import LiveBox
from ._feed import Batch
from ._model import ChartState

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["COLOURS", "LiveCharts", "colour"]

# Each provider keeps its colour in every panel (brand-like where there is one).
COLOURS = {"claude": "#d97757", "openai": "#10a37f", "groq": "#f55036", "gemini": "#4285f4"}
_SPARE = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

# (column of ChartState.columns, subplot row, subplot col, dash, label, hover value format)
_SERIES = (
    ("latency_p50", 1, 1, "solid", "latency p50", "%{y:.3f} s"),
    ("latency_p95", 1, 1, "dash", "latency p95", "%{y:.3f} s"),
    ("ttft_p50", 1, 1, "dot", "TTFT p50", "%{y:.3f} s"),
    ("tokens_per_s", 1, 2, "solid", "output tokens/s", "%{y:.0f} tok/s"),
    ("tokens", 2, 1, "solid", "tokens in + out", "%{y:,} tokens"),
    ("cost_usd", 2, 2, "solid", "cost", "$%{y:.5f}"),
)
_TITLES = (
    "latency p50 (solid), p95 (dash), TTFT p50 (dot)",
    "output tokens per second",
    "tokens, cumulative",
    "cost, cumulative",
    "retries and failed requests by error class (since this chart opened)",
)
_AXES = (("seconds", 1, 1), ("tokens/s", 1, 2), ("tokens", 2, 1), ("US$", 2, 2), ("count", 3, 1))


def colour(pid: str) -> str:
    return COLOURS.get(pid) or _SPARE[sum(map(ord, pid)) % len(_SPARE)]


def _figure(height: int) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=3, cols=2, specs=[[{}, {}], [{}, {}], [{"colspan": 2}, None]],
        subplot_titles=_TITLES, vertical_spacing=0.11, horizontal_spacing=0.09,
    )
    figure.update_layout(
        height=height, margin={"l": 60, "r": 20, "t": 40, "b": 40}, template="plotly_white",
        legend={"title": {"text": "provider"}}, hovermode="closest", barmode="group",
        font={"size": 11},
    )
    for title, row, col in _AXES:
        figure.update_yaxes(title_text=title, rangemode="tozero", row=row, col=col)
    for row, col in ((1, 1), (1, 2), (2, 1), (2, 2)):  # clock time, level and sparse enough to read
        figure.update_xaxes(tickformat="%H:%M:%S", tickangle=0, nticks=5, row=row, col=col)
    figure.update_annotations(font_size=12)
    # the layout is complete before the widget exists: a front end that opens it later is sent
    # its initial state, not the relayouts made in between
    return go.FigureWidget(figure)


class LiveCharts(LiveBox):
    """A point per provider per render interval in which requests finished (at most 4 a
    second), the last ``history`` of them kept."""

    def __init__(self, client: Client | None = None, *, history: int = 300, height: int = 640) -> None:
        super().__init__(client)
        self.state = ChartState(history)
        self.figure = _figure(height)
        self._traces: dict[str, dict[str, int]] = {}
        self.children = [self.figure]
        self.add_class("accel-live-charts")
        self._start()

    def update(self, batch: Batch) -> None:
        changed = self.state.add(batch.records, batch.stats, batch.time)
        for pid in sorted(changed - set(self._traces)):
            self._add_provider(pid)
        if changed:
            with self.figure.batch_update():
                for pid in changed:
                    self._draw(pid)

    def _add_provider(self, pid: str) -> None:
        """The provider's traces, added in one call: one validation pass and one message to the
        front end rather than one per trace."""
        import plotly.graph_objects as go

        first = len(self.figure.data)
        shade = colour(pid)
        traces = [
            go.Scatter(
                x=[], y=[], name=pid, legendgroup=pid, showlegend=i == 0, mode="lines+markers",
                line={"color": shade, "dash": dash, "width": 2}, marker={"size": 4},
                hovertemplate=f"<b>{pid}</b> {label}<br>%{{x|%H:%M:%S}}<br>{fmt}<extra></extra>",
            )
            for i, (_, _, _, dash, label, fmt) in enumerate(_SERIES)
        ]
        traces.append(go.Bar(x=[], y=[], name=pid, legendgroup=pid, showlegend=False, marker_color=shade,
                             hovertemplate=f"<b>{pid}</b><br>%{{x}}: %{{y}}<extra></extra>"))
        self.figure.add_traces(traces, rows=[row for _, row, *_ in _SERIES] + [3],
                               cols=[col for _, _, col, *_ in _SERIES] + [1])
        self._traces[pid] = {name: first + i for i, (name, *_) in enumerate(_SERIES)}
        self._traces[pid]["classes"] = first + len(_SERIES)

    def _draw(self, pid: str) -> None:
        data, index = self.figure.data, self._traces[pid]
        columns = self.state.columns(pid)
        times = columns["stamp"]
        for name, *_ in _SERIES:
            trace = data[index[name]]
            trace.x, trace.y = times, columns[name]
        counts = self.state.classes.get(pid, {})
        bars = data[index["classes"]]
        bars.x, bars.y = list(counts), list(counts.values())
