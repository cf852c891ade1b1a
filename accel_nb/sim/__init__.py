"""A local server that speaks the providers' wire protocols, for notebooks, tests and benchmarks.

It answers like the real APIs (bodies, headers, SSE framing, usage, rate-limit headers,
error shapes) with deterministic text, realistic latency and injectable faults, so
everything runs with no keys and no network.

>>> from accel_nb.sim import serve                       # doctest: +SKIP
>>> with serve(latency="zero") as sim:                   # doctest: +SKIP
...     sim.base_urls["openai"]
'http://127.0.0.1:54321/openai/v1'
"""

from __future__ import annotations

from .server import SimServer, build_app, fetch_stats, serve

__all__ = ["SimServer", "build_app", "fetch_stats", "serve"]
