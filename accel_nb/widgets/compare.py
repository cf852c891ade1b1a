"""``ComparePanel``: one prompt to several providers at once, each answer streaming into its
own column, then a table and bar charts of latency, tokens and cost."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..providers import get_adapter
from ._base import LiveBox, set_if_changed
from ._feed import Batch
from ._html import STYLE, esc, table
from ._model import compare_row
from .charts import colour

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["ComparePanel"]


@dataclass
class _Answer:
    target: str
    parts: list[str] = field(default_factory=list)
    outcome: Any = None  # the Response, or the error that ended the stream


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class ComparePanel(LiveBox):
    """A prompt box, a checkbox per chat provider with a key, and a run button."""

    def __init__(self, client: Client | None = None) -> None:
        super().__init__(client)
        settings = self.client.settings
        chat = [pid for pid, cfg in settings.providers.items() if cfg.keys and "chat" in get_adapter(pid).kinds]
        self.prompt = w.Textarea(placeholder="a prompt to send to every checked provider", rows=3,
                                 layout=w.Layout(width="100%"))
        self.checks = {pid: w.Checkbox(value=True, description=pid, indent=False, layout=w.Layout(width="auto"))
                       for pid in chat}
        self.run_button = w.Button(description="Run", icon="play", button_style="primary")
        self.columns = w.HBox(layout=w.Layout(width="100%"))
        self.results = w.HTML()
        self.chart = w.Box()
        # the current run: answers and their (head, body) widgets, swapped as one
        self._run: tuple[list[_Answer], list[tuple[w.HTML, w.HTML]]] = ([], [])
        self._done: concurrent.futures.Future[list[Any]] | None = None
        self.children = [
            w.HTML("<b>Compare</b>" + STYLE),
            self.prompt,
            w.HBox([*self.checks.values(), self.run_button]),
            self.columns,
            self.results,
            self.chart,
        ]
        self.add_class("accel-compare")
        self.run_button.on_click(lambda _b: self.start())
        self._start()

    def targets(self) -> list[str]:
        """The checked providers, each with the picker's model when it picked that provider."""
        default = self.client.settings.default_target
        chosen = default if default and ":" in default else None
        return [chosen if chosen and chosen.split(":")[0] == pid else pid
                for pid, box in self.checks.items() if box.value]

    def start(self, prompt: str | None = None, targets: Sequence[str] | None = None) -> concurrent.futures.Future:
        """Send ``prompt`` (the prompt box by default) to every target; the future resolves to
        the compare-table rows once every answer is in and the table is drawn."""
        prompt = self.prompt.value if prompt is None else prompt
        targets = list(self.targets() if targets is None else targets)
        done: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        if not prompt.strip() or not targets:
            self.results.value = "<span class='accel-muted'>write a prompt and check at least one provider</span>"
            done.set_result([])
            return done
        self.run_button.disabled = True
        self._done = done
        answers = [_Answer(t) for t in targets]
        empty = "<pre class='accel-answer'></pre>"
        shown = [(w.HTML(self._head(a.target, "waiting…")), w.HTML(empty)) for a in answers]
        old = self.columns.children
        self.columns.children = [
            w.VBox(pair, layout=w.Layout(flex="1 1 0", min_width="200px", padding="0 6px")) for pair in shown
        ]
        self._run = (answers, shown)
        for widget in old:
            widget.close()
        self.results.value = ""
        threading.Thread(target=lambda: asyncio.run(self._stream_all(prompt, answers)),
                         name="accel_nb-compare", daemon=True).start()
        return done

    @staticmethod
    def _head(target: str, state: str) -> str:
        who = f"<b style='color:{colour(target.split(':')[0])}'>{esc(target)}</b>"
        return f"{who} <span class='accel-muted accel-state'>{esc(state)}</span>"

    async def _stream_all(self, prompt: str, answers: list[_Answer]) -> None:
        """On a worker thread's own loop; text lands in ``parts`` and the feed draws it."""

        async def one(answer: _Answer) -> None:
            try:
                stream = self.client.astream(answer.target, prompt, priority="high")
                async for chunk in stream:
                    answer.parts.append(chunk.text)
                    self.feed.poke()
                answer.outcome = stream.response
            except Exception as exc:
                answer.outcome = exc

        await asyncio.gather(*(one(a) for a in answers))
        self.feed.post(lambda: self._finish(answers))

    # -- render thread ---------------------------------------------------------------------
    def update(self, batch: Batch) -> None:
        answers, shown = self._run
        for answer, (head, body) in zip(answers, shown, strict=True):
            state = "streaming…" if answer.parts else "waiting…"
            if answer.outcome is not None:
                row = compare_row(answer.target, answer.outcome)
                state = f"✓ {row['latency_s']:.2f} s" if row["ok"] else f"✗ {row['error']}"
            set_if_changed(head, "value", self._head(answer.target, state))
            set_if_changed(body, "value", f"<pre class='accel-answer'>{esc(''.join(answer.parts))}</pre>")

    def _finish(self, answers: list[_Answer]) -> None:
        rows = [compare_row(a.target, a.outcome) for a in answers]
        self.update(Batch([], {}, 0.0))  # the last text and every final state, drawn now
        self.results.value = _table(rows)
        ok = [r for r in rows if r["ok"]]
        if ok:
            self._draw_chart(ok)
        self.run_button.disabled = False
        if self._done is not None and answers is self._run[0]:
            self._done.set_result(rows)

    def _draw_chart(self, rows: list[dict[str, Any]]) -> None:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        metrics = (("latency_s", "latency (s)", "%{y:.3f} s"), ("output_tokens", "output tokens", "%{y} tokens"),
                   ("cost_usd", "cost (US$)", "$%{y:.5f}"))
        figure = make_subplots(rows=1, cols=3, subplot_titles=[m[1] for m in metrics])
        names = [r["target"] for r in rows]
        colours = [colour(n.split(":")[0]) for n in names]
        for col, (key, _, fmt) in enumerate(metrics, start=1):
            figure.add_trace(go.Bar(x=names, y=[r[key] or 0 for r in rows], marker_color=colours, showlegend=False,
                                    hovertemplate=f"%{{x}}<br>{fmt}<extra></extra>"), row=1, col=col)
        figure.update_layout(height=300, template="plotly_white", margin={"l": 50, "r": 20, "t": 40, "b": 80})
        old, self.chart.children = self.chart.children, [go.FigureWidget(figure)]
        for widget in old:
            widget.close()


def _table(rows: list[dict[str, Any]]) -> str:
    cells = []
    for r in rows:
        if not r["ok"]:
            cells.append([esc(r["target"]), f"<span class='accel-muted'>{esc(r['error'])}</span>", *[""] * 6])
            continue
        cells.append([
            esc(r["target"]), _fmt(r["latency_s"], ".3f"), _fmt(r["ttft_s"], ".3f"), str(r["input_tokens"]),
            str(r["output_tokens"]), _fmt(r["tokens_per_s"], ".0f"), _fmt(r["cost_usd"], ".5f"), str(r["attempts"]),
        ])
    headers = ["target", "latency s", "TTFT s", "tokens in", "tokens out", "tok/s", "cost $", "attempts"]
    return table(headers, cells, "accel-compare-table", numeric=range(1, 8))
