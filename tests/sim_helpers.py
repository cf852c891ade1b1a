"""Raw-HTTP helpers for the simulator tests: one chat request per provider, and its stream's frames."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from accel_nb.providers.framing import SSEDecoder
from accel_nb.sim import SimServer

PROVIDERS = ("openai", "claude", "groq", "gemini")
MODELS = {
    "openai": "gpt-4o-mini",
    "claude": "claude-haiku-4-5",
    "groq": "llama-3.3-70b-versatile",
    "gemini": "gemini-2.5-flash",
}
KEY = "sk-test-key"

#: One client for every test: a fresh ``httpx.Client`` per request costs ~40 ms (its SSL context).
http = httpx.Client(timeout=10.0)
PROMPT = "Explain backpressure in two sentences."


def chat_request(
    sim: SimServer,
    provider: str,
    *,
    stream: bool = False,
    key: str | None = KEY,
    fault: str | None = None,
    max_tokens: int = 20,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``httpx.request(**chat_request(...))``: the provider's own chat call, as its SDK sends it."""
    base, model = sim.base_urls[provider], MODELS[provider]
    sent: dict[str, str] = {}
    messages = [{"role": "user", "content": PROMPT}]
    if provider == "claude":
        url = base + "/v1/messages"
        sent["anthropic-version"] = "2023-06-01"
        if key:
            sent["x-api-key"] = key
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages, "stream": stream}
    elif provider == "gemini":
        url = f"{base}/v1beta/models/{model}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
        if key:
            sent["x-goog-api-key"] = key
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"maxOutputTokens": max_tokens},
        }
    else:
        url = base + ("/openai/v1" if provider == "groq" else "") + "/chat/completions"
        if key:
            sent["Authorization"] = f"Bearer {key}"
        body = {"model": model, "messages": messages, "max_tokens": max_tokens, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
    if fault:
        sent["x-sim-fault"] = fault
    sent.update(headers or {})
    return {"method": "POST", "url": url, "headers": sent, "json": body}


def sse_frames(lines: Iterable[str]) -> list[tuple[str | None, str]]:
    """``(event, data)`` pairs of an SSE body read line by line (line ends stripped or not)."""
    decoder, frames = SSEDecoder(), []
    for line in lines:
        frames += decoder.feed(line.rstrip("\r\n").encode() + b"\n")
    return frames + decoder.close()


def token_text(provider: str, data: str) -> str | None:
    """The text a stream frame adds, or ``None`` when it adds none."""
    if data == "[DONE]":
        return None
    frame = json.loads(data)
    if provider == "claude":
        return frame["delta"]["text"] if frame.get("type") == "content_block_delta" else None
    if provider == "gemini":
        return (frame["candidates"][0]["content"]["parts"][0]["text"] or None) if "candidates" in frame else None
    choices = frame.get("choices")
    return (choices[0]["delta"].get("content") or None) if choices else None


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until it holds (the server notices a disconnect a moment after the client)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def post(request: dict[str, Any], **options: Any) -> httpx.Response:
    return http.request(**request, **options)
