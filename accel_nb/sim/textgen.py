"""Deterministic answer text: plausible English that depends only on (seed, model, prompt).

The simulator needs replies that look like a model's (a paragraph or two of
markdown, now and then a bullet list, mentioning the prompt's own words) so
notebooks and demos read naturally, yet are reproducible so tests can assert on
them.  Every token count goes through ``accel_nb.tokens`` so the simulator and
the engine's estimates agree exactly.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import lru_cache

from ..tokens import count_tokens, split_tokens

__all__ = ["Generation", "answer", "generate"]

MIN_TOKENS, MAX_TOKENS = 30, 150

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOPWORDS = frozenset(
    """about above after again against also another because been before being below between both
    could does doing down during each explain from further give have having here into just know like
    make many more most much must only other over please same should show some such tell than that
    their them then there these they this those through under until very want were what when where
    which while will with would write your yours""".split()
)

_OPENERS = (
    "Here is a short answer about {a}.",
    "Good question: {a} comes down to a few ideas.",
    "In short, {a} is about how {b} behaves in practice.",
    "Let's look at {a} step by step.",
    "{A} is easiest to understand through {b}.",
    "There are two sides to {a}, and {b} connects them.",
)
_SENTENCES = (
    "The key point is that {a} depends on {b} more than most people expect.",
    "A useful way to think about {a} is as a trade-off between speed and accuracy.",
    "In practice, start small, measure, and only then tune {b}.",
    "Most problems with {a} come from unclear assumptions rather than hard limits.",
    "At a larger scale, {b} makes {a} noticeably more expensive.",
    "It helps to write down what {a} should guarantee before choosing a tool.",
    "Keep an eye on edge cases: empty inputs, slow networks and retries.",
    "A simple example makes {a} concrete: change one thing and watch {b}.",
    "The details vary, but the principle stays the same.",
    "If you remember one thing, make it this: **{a}** rewards patience.",
    "Good defaults matter more than clever tricks here.",
    "Small experiments will answer most of the remaining questions about {b}.",
    "{A} and {b} interact, so change one at a time.",
    "There is no single right answer; the context decides.",
    "Experienced teams treat {b} as a budget, not an afterthought.",
)
_BULLET_LEADS = ("A few things to check:", "Consider these points:", "In summary:")
_BULLETS = (
    "**{A}**: what it is and why it matters",
    "how {b} affects the result",
    "the cost of getting {a} wrong",
    "a quick test you can run today",
    "where {b} usually breaks",
    "what to measure first",
)
_CLOSERS = ("That should be enough to get started.", "Hope this helps with {a}.", "From there, refine as you go.")


@dataclass(frozen=True, slots=True)
class Generation:
    """A reply cut to the request's limits; ``finish`` is ``stop``, ``stop_sequence`` or ``length``."""

    tokens: tuple[str, ...]
    text: str
    finish: str
    stop_sequence: str | None = None


@lru_cache(maxsize=4096)
def answer(seed: int, model: str, prompt: str) -> str:
    """The full answer (30-150 tokens) to ``prompt``; the same inputs always give the same text."""
    digest = hashlib.blake2b(f"{seed}\0{model}\0{prompt}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(digest, "little"))
    target = rng.randint(MIN_TOKENS, MAX_TOKENS)
    a, b = _topics(prompt, rng)

    def fill(template: str) -> str:
        return template.format(a=a, b=b, A=a[:1].upper() + a[1:])

    pool = rng.sample(_SENTENCES, len(_SENTENCES))
    with_list = rng.random() < 0.3
    blocks: list[str] = []
    paragraph = [fill(rng.choice(_OPENERS))]
    used = count_tokens(paragraph[0])
    while used < target and pool:
        sentence = fill(pool.pop())
        paragraph.append(sentence)
        used += count_tokens(sentence)
        if len(paragraph) >= rng.randint(2, 4):
            blocks.append(" ".join(paragraph))
            paragraph = []
            if with_list and len(blocks) == 1:
                items = [fill(item) for item in rng.sample(_BULLETS, rng.randint(3, 4))]
                block = rng.choice(_BULLET_LEADS) + "\n\n" + "\n".join(f"- {item}" for item in items)
                blocks.append(block)
                used += count_tokens(block)
    if paragraph:
        blocks.append(" ".join(paragraph))
    if rng.random() < 0.5:
        blocks[-1] += " " + fill(rng.choice(_CLOSERS))
    return "\n\n".join(blocks)


@lru_cache(maxsize=4096)
def generate(seed: int, model: str, prompt: str, max_tokens: int | None, stop: tuple[str, ...] = ()) -> Generation:
    """``answer`` cut at the earliest stop sequence (not included), then at ``max_tokens``."""
    text = answer(seed, model, prompt)
    finish, matched = "stop", None
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if hits:
        cut, matched = min(hits)
        text, finish = text[:cut], "stop_sequence"
    tokens = split_tokens(text)
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens, finish, matched = tokens[:max_tokens], "length", None
    return Generation(tuple(tokens), "".join(tokens), finish, matched)


def _topics(prompt: str, rng: random.Random) -> tuple[str, str]:
    """Two content words of the prompt to talk about (generic ones when it has none)."""
    found = _WORD.findall(prompt)
    if found and prompt.lstrip().startswith(found[0]):
        found[0] = found[0].lower()  # capitalized only because it starts the prompt
    words = list(dict.fromkeys(w for w in found if w.lower() not in _STOPWORDS))
    if len(words) > 2:
        words = rng.sample(words[:8], 2)
    first, second = (*words, "the question", "the details")[:2]
    return first, second
