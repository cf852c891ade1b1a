r"""``{name}`` references in a prompt, filled from the user's namespace; every other brace left alone.

A reference is a variable name followed by attribute, index and slice steps: ``{name}``,
``{name.attr}``, ``{rows[0]}``, ``{d['key']}``, ``{doc[:2000]}``, ``{In[3]}``, ``{Out[3]}``.  Prompts are full
of braces that are *not* references — code, JSON, LaTeX — so a reference only counts where
a person would mean one:

* Braces that are not a reference (``{"a": 1}``, ``{x: 1}``, ``{1, 2}``, ``f"{x!r}"``,
  ``{ spaced }``, ``{}``) are never touched.
* Inside a fenced code block, an inline code span, or ``$…$`` / ``$$…$$`` math, nothing is
  touched — except a reference standing alone on its own line in a fence, so that a fence
  holding just the line ``{In[3]}`` sends the code of cell 3.
* After a LaTeX command or argument (``\frac{a}{b}``, ``x^{n}``, ``a_{i}``, ``\{x\}``) and in
  ``${x}`` templates, braces are left alone; so is ``{{x}``.
* ``{{name}}`` is the escape: it becomes the literal text ``{name}``.
* An unknown name is an ``InterpolationError`` naming it and suggesting close matches.

>>> interpolate("Summarise {doc} in {n} words", {"doc": "a long text", "n": 5})
'Summarise a long text in 5 words'
>>> print(interpolate(r"d = {'a': {x}}, \frac{a}{b}, {{x}}", {"x": 1}))
d = {'a': 1}, \frac{a}{b}, {x}
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["InterpolationError", "interpolate", "references"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_INDEX = r"\[(?:-?\d*:-?\d*|-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\")\]"
_REF = rf"{_IDENT}(?:\.{_IDENT}|{_INDEX})*"
_TOKEN = re.compile(rf"\{{\{{(?P<escaped>{_REF})\}}\}}|\{{(?P<ref>{_REF})\}}")
_STEP = re.compile(rf"\.(?P<attr>{_IDENT})|\[(?P<index>-?\d*:-?\d*|-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\")\]")
_HEAD = re.compile(_IDENT)

_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_LONE_REF = re.compile(rf"^\s*(?:\{{\{{{_REF}\}}\}}|\{{{_REF}\}})\s*$")
_CODE_SPAN = re.compile(r"(?<!`)(?P<ticks>`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)(?P=ticks)(?!`)", re.DOTALL)
_DISPLAY_MATH = re.compile(r"(?<![\\$])\$\$.+?\$\$", re.DOTALL)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?![\s$])[^$\n]+?(?<![\s\\])\$(?!\d)")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+\*?$")
_LITERAL_BEFORE = frozenset("\\$^_{")
_CLOSERS = {"}": "{", "]": "["}
_MASK = "\0"


class InterpolationError(ValueError):
    """A reference that cannot be filled: unknown name, missing attribute, bad index."""

    def __init__(self, ref: str, message: str, suggestions: list[str] | None = None) -> None:
        self.ref = ref
        self.suggestions = suggestions or []
        self.message = message
        super().__init__(message)


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """``text`` with each reference replaced by ``str`` of its value (see the module docstring)."""
    out: list[str] = []
    last = 0
    for match, escaped in _matches(text):
        out.append(text[last : match.start()])
        if escaped:
            out.append("{" + match.group("escaped") + "}")
        else:
            out.append(_text(resolve(match.group("ref"), namespace)))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def references(text: str) -> list[str]:
    """The references ``interpolate`` would fill, in order (escaped ones excluded)."""
    return [m.group("ref") for m, escaped in _matches(text) if not escaped]


def resolve(ref: str, namespace: Mapping[str, Any]) -> Any:
    """The value of one reference such as ``rows[0].name``."""
    head = _HEAD.match(ref)
    assert head is not None
    name = head.group(0)
    if name not in namespace:
        raise InterpolationError(ref, f"{{{ref}}}: no variable named {name!r}", _suggest(name, namespace))
    value = namespace[name]
    done = name
    for step in _STEP.finditer(ref, head.end()):
        try:
            if step.group("attr") is not None:
                value = getattr(value, step.group("attr"))
            else:
                value = value[_index(step.group("index"))]
        except Exception as exc:
            raise InterpolationError(ref, f"{{{ref}}}: {_describe(done, step.group(0), value, exc)}") from None
        done += step.group(0)
    return value


# -- finding references ---------------------------------------------------------------------


def _matches(text: str):
    """``(match, escaped)`` for every reference outside the literal zones."""
    masked = _mask_literal_zones(text)
    for match in _TOKEN.finditer(masked):
        if not _latex_context(text, match.start()):
            yield match, match.group("escaped") is not None


def _latex_context(text: str, start: int) -> bool:
    """Whether the brace at ``start`` opens a LaTeX argument (or a ``${…}`` template): it follows
    ``\\``, ``$``, ``^``, ``_``, ``{``, or a command such as ``\\frac``, possibly through earlier
    arguments (``\\frac{a}{b}``, ``\\sqrt[3]{x}``)."""
    pos = start
    while pos and text[pos - 1] in _CLOSERS:
        opener = _opening(text, pos - 1)
        if opener is None:
            return False
        pos = opener
    before = text[pos - 1] if pos else ""
    if before in _LITERAL_BEFORE:
        return True
    return (before.isalpha() or before == "*") and _LATEX_COMMAND.search(text, max(0, pos - 40), pos) is not None


def _opening(text: str, close: int) -> int | None:
    """The index of the bracket that ``text[close]`` closes, or ``None``."""
    closer = text[close]
    opener, depth = _CLOSERS[closer], 0
    for i in range(close, max(-1, close - 2000), -1):
        if text[i] == closer:
            depth += 1
        elif text[i] == opener:
            depth -= 1
            if depth == 0:
                return i
    return None


def _mask_literal_zones(text: str) -> str:
    """``text`` with code fences (but not their lone-reference lines), code spans and math
    replaced by NULs of the same length, so no reference can match inside them."""
    chars = list(text)
    lines = text.splitlines(keepends=True)
    pos = 0
    fence: tuple[str, int] | None = None
    for line in lines:
        body = line.rstrip("\r\n")
        if fence is None:
            opened = _FENCE_OPEN.match(body)
            if opened and not (opened.group("fence")[0] == "`" and "`" in opened.group("info")):
                marker = opened.group("fence")
                fence = (marker[0], len(marker))
                _blank(chars, pos, pos + len(body))
        else:
            stripped = body.strip()
            closing = (
                len(body) - len(body.lstrip(" ")) <= 3
                and len(stripped) >= fence[1]
                and set(stripped) == {fence[0]}
            )
            if closing:
                fence = None
            if closing or not _LONE_REF.match(body):
                _blank(chars, pos, pos + len(body))
        pos += len(line)
    masked = "".join(chars)
    for pattern in (_CODE_SPAN, _DISPLAY_MATH, _INLINE_MATH):
        for zone in pattern.finditer(masked):
            _blank(chars, *zone.span())
        masked = "".join(chars)
    return masked


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = _MASK


# -- values ---------------------------------------------------------------------------------


def _index(text: str) -> int | str | slice:
    if text[0] in "'\"":
        return text[1:-1]
    if ":" in text:
        start, stop = (int(part) if part else None for part in text.split(":"))
        return slice(start, stop)
    return int(text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _describe(done: str, step: str, value: Any, exc: Exception) -> str:
    kind = type(value).__name__
    if isinstance(exc, AttributeError):
        return f"{done} (a {kind}) has no attribute {step[1:]!r}"
    if done in ("In", "Out") and isinstance(exc, (IndexError, KeyError)):
        have = sorted(value) if isinstance(value, Mapping) else range(1, len(value))
        listed = ", ".join(map(str, list(have)[-8:])) or "none yet"
        return f"there is no {done}{step} (numbers so far: {listed})"
    if isinstance(exc, IndexError):
        if not hasattr(value, "__len__"):
            return str(exc)
        return f"{done}{step} is out of range ({done} has {len(value)} items)"
    if isinstance(exc, KeyError):
        keys = list(value)[:8] if isinstance(value, Mapping) else []
        return f"{done} has no key {step[1:-1]}" + (f" (keys: {', '.join(map(repr, keys))})" if keys else "")
    if isinstance(exc, TypeError):
        return f"{done} (a {kind}) cannot be indexed with {step}"
    return f"{done}{step} failed: {type(exc).__name__}: {exc}"


def _suggest(name: str, namespace: Mapping[str, Any]) -> list[str]:
    names = [n for n in namespace if isinstance(n, str) and (not n.startswith("_") or name.startswith("_"))]
    return difflib.get_close_matches(name, names, n=3, cutoff=0.6)
