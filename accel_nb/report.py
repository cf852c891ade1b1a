"""Comparing providers on one prompt set: run it, tabulate it, chart it, export it.

``compare`` streams every prompt to every target at once through one client, so time to
first token is measured as a person sees it.  The ``Comparison`` it returns turns the
outcomes into one row per target (``rows``; a text table with ``str``, an HTML table in a
notebook), plotly charts (``figures``), one self-contained HTML report (``write_html``:
plotly.js is inlined, so the file opens offline and fetches nothing) and JSON
(``to_json`` / ``from_json``) to store a run and load it back.  plotly loads only for charts.

>>> comparison = await compare(client, ["claude", "openai"], prompts)    # doctest: +SKIP
>>> comparison.write_html("report.html")                                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import html
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .engine.tracker import percentile
from .errors import AccelError
from .notebook.display import html_table, money, seconds
from .tables import text_table
from .types import Response

__all__ = ["Comparison", "Outcome", "compare"]

HEADER = ["target", "served by", "ok", "retries", "errors", "p50 latency", "p95 latency", "p50 TTFT",
          "tokens in/out", "tok/s", "cost", "$ / 1k tokens"]
_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;margin:1em 0}th,td{padding:4px 10px;border-bottom:1px solid #d0d7de}
th{background:#f6f8fa}.muted{color:#59636e}"""


@dataclass(frozen=True)
class Outcome:
    """One prompt's result from one target: the measurements of a ``Response``, or the error."""

    target: str
    prompt: int  # index into the prompt set
    model: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    attempts: int = 1
    error: str | None = None  # the error's class name, when the request failed
    text: str = ""

    @classmethod
    def of(cls, target: str, prompt: int, result: Response | BaseException) -> Outcome:
        if not isinstance(result, Response):
            return cls(target, prompt, error=type(result).__name__, text=str(result))
        return cls(target, prompt, result.model, result.latency_s, result.ttft_s, result.usage.input_tokens,
                   result.usage.output_tokens, result.cost_usd, result.attempts, text=result.text)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tokens_per_s(self) -> float | None:
        """Generation speed after the first token (what a reader feels once text flows)."""
        if not self.ok or self.ttft_s is None or self.latency_s is None or self.latency_s <= self.ttft_s:
            return None
        return self.output_tokens / (self.latency_s - self.ttft_s)


async def _one(client: Any, target: str, prompt: str, options: dict[str, Any]) -> Response | AccelError:
    stream = client.astream(target, prompt, **options)
    try:
        async for _ in stream:
            pass
    except AccelError as exc:  # a failure is a result of the comparison, not a crash
        return exc
    return stream.response


async def compare(client: Any, targets: Sequence[str], prompts: Sequence[str], **options: Any) -> Comparison:
    """Stream every prompt to every target at once; ``options`` go to each call (``max_tokens``…)."""
    from .config import simulated

    on_sim = simulated(client.settings)
    served_by = {t: "simulator" if client.resolve(t)[0] in on_sim else "real API" for t in targets}
    calls = [(t, i, asyncio.ensure_future(_one(client, t, p, options))) for t in targets for i, p in enumerate(prompts)]
    await asyncio.gather(*(future for *_, future in calls))
    outcomes = [Outcome.of(t, i, future.result()) for t, i, future in calls]
    return Comparison(list(prompts), outcomes, served_by, time.time())


@dataclass(repr=False)
class Comparison:
    """The outcomes of one prompt set on several targets, and what to make of them."""

    prompts: list[str]
    outcomes: list[Outcome]
    served_by: dict[str, str]  # target -> "real API" or "simulator"
    created_at: float

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(o.target for o in self.outcomes))

    def of(self, target: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.target == target]

    def label(self, target: str) -> str:
        """``provider:model`` as answered (the target as asked when every request failed)."""
        model = next((o.model for o in self.of(target) if o.model), None)
        return f"{target.partition(':')[0]}:{model}" if model else target

    # -- the numbers -----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One dict of numbers per target (``None`` where nothing was measured)."""
        return [self._row(target) for target in self.targets]

    def _row(self, target: str) -> dict[str, Any]:
        items = self.of(target)
        ok = [o for o in items if o.ok]
        latencies = [o.latency_s for o in ok if o.latency_s is not None]
        ttfts = [o.ttft_s for o in ok if o.ttft_s is not None]
        speeds = [s for o in ok if (s := o.tokens_per_s) is not None]
        costs = [o.cost_usd for o in ok if o.cost_usd is not None]
        tokens_in, tokens_out = sum(o.input_tokens for o in ok), sum(o.output_tokens for o in ok)
        cost = sum(costs) if costs else None
        return {
            "target": self.label(target),
            "served_by": self.served_by.get(target, "?"),
            "requests": len(items),
            "ok": len(ok),
            "retries": sum(o.attempts - 1 for o in ok),
            "errors": dict(Counter(o.error for o in items if not o.ok)),
            "latency_p50_s": percentile(latencies, 50),
            "latency_p95_s": percentile(latencies, 95),
            "ttft_p50_s": percentile(ttfts, 50),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "tokens_per_s": statistics.median(speeds) if speeds else None,
            "cost_usd": cost,
            "cost_per_1k_tokens": cost * 1000 / (tokens_in + tokens_out) if cost is not None and tokens_in + tokens_out
            else None,
        }

    def table(self) -> list[list[str]]:
        """``rows`` formatted for reading, in ``HEADER``'s order."""
        return [
            [
                r["target"],
                r["served_by"],
                f"{r['ok']}/{r['requests']}",
                str(r["retries"]),
                ", ".join(f"{name} ×{n}" for name, n in sorted(r["errors"].items())) or "–",
                seconds(r["latency_p50_s"]),
                seconds(r["latency_p95_s"]),
                seconds(r["ttft_p50_s"]),
                f"{r['input_tokens']:,}/{r['output_tokens']:,}",
                "–" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.0f}",
                money(r["cost_usd"]),
                "n/a" if r["cost_per_1k_tokens"] is None else f"${r['cost_per_1k_tokens']:.5f}",
            ]
            for r in self.rows()
        ]

    def text(self, columns: Sequence[str] = HEADER) -> str:
        """The table as aligned text, with only ``columns`` (names from ``HEADER``) if given."""
        keep = [HEADER.index(name) for name in columns]
        return text_table(columns, [[row[i] for i in keep] for row in self.table()])

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.prompts)} prompts on {len(self.targets)} targets>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_html_(self) -> str:
        return html_table(HEADER, self.table(), cls="accel-nb-comparison")

    # -- charts and the report -------------------------------------------------------------------
    def figures(self) -> list[Any]:
        """Box plots of latency and TTFT per target; bars of cost per 1,000 tokens (priced targets)."""
        import plotly.graph_objects as go

        timing = go.Figure(layout={"title": "Latency and time to first token per request (s)",
                                   "boxmode": "group", "yaxis": {"title": "seconds", "rangemode": "tozero"}})
        for name, field in (("latency", "latency_s"), ("TTFT", "ttft_s")):
            xs, ys = [], []
            for target in self.targets:
                values = [getattr(o, field) for o in self.of(target) if o.ok and getattr(o, field) is not None]
                xs += [self.label(target)] * len(values)
                ys += values
            timing.add_trace(go.Box(x=xs, y=ys, name=name, boxpoints="all", jitter=0.3))
        priced = [r for r in self.rows() if r["cost_per_1k_tokens"] is not None]
        unpriced = [r["target"] for r in self.rows() if r["cost_per_1k_tokens"] is None]
        title = "Cost per 1,000 tokens (USD, input and output together)"
        if unpriced:
            title += f"<br><sup>no price known: {', '.join(unpriced)}</sup>"
        cost = go.Figure(go.Bar(x=[r["target"] for r in priced], y=[r["cost_per_1k_tokens"] for r in priced],
                                text=[f"${r['cost_per_1k_tokens']:.5f}" for r in priced], textposition="outside"),
                         layout={"title": title, "yaxis": {"title": "USD per 1k tokens"}})
        return [timing, cost]

    def to_html(self, title: str = "Provider comparison") -> str:
        """The whole report as one HTML document: table, charts (plotly.js inlined once), prompts."""
        charts = [figure.to_html(full_html=False, include_plotlyjs=index == 0, config={"displaylogo": False})
                  for index, figure in enumerate(self.figures())]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created_at))
        simulated = sorted(t for t, where in self.served_by.items() if where == "simulator")
        note = f"{len(self.prompts)} prompts × {len(self.targets)} targets, streamed at once, {when}."
        if simulated:
            note += f" Answered by the local simulator, not the real API: {', '.join(simulated)}."
        prompts = "".join(f"<li>{html.escape(p)}</li>" for p in self.prompts)
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
                f"<p class='muted'>{html.escape(note)}</p>{self._repr_html_()}{''.join(charts)}"
                f"<h2>Prompts</h2><ol>{prompts}</ol></body></html>")

    def write_html(self, path: str | Path, title: str = "Provider comparison") -> Path:
        path = Path(path)
        path.write_text(self.to_html(title), encoding="utf-8")
        return path

    # -- storing a run ---------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"prompts": self.prompts, "served_by": self.served_by, "created_at": self.created_at,
                           "outcomes": [asdict(o) for o in self.outcomes]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Comparison:
        data = json.loads(text)
        return cls(data["prompts"], [Outcome(**o) for o in data["outcomes"]], data["served_by"], data["created_at"])
