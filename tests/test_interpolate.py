"""``{name}`` references in prompts: filled where a person means one, every other brace untouched."""

from __future__ import annotations

import pytest

from accel_nb.notebook.interpolate import InterpolationError, interpolate, references

NS = {
    "name": "Ada",
    "n": 3,
    "rows": ["first", "second"],
    "d": {"key": "value", "k2": 2},
    "In": ["", "x = 1", "print(x)", "def f(a):\n    return {a: 1}"],
    "Out": {2: 42},
    "obj": type("Obj", (), {"attr": "an attribute", "items": [10, 20]})(),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {name}", "Hello Ada"),
        ("{n} items", "3 items"),
        ("{rows[0]} and {rows[-1]}", "first and second"),
        ("{d['key']} {d[\"k2\"]}", "value 2"),
        ("{obj.attr} {obj.items[1]}", "an attribute 20"),
        ("Explain:\n{In[3]}", "Explain:\ndef f(a):\n    return {a: 1}"),
        ("It printed {Out[2]}", "It printed 42"),
        ("{name}{n}", "Ada3"),
        ("quote: \"{name}\"", 'quote: "Ada"'),
        ("nested dict {'a': {n}}", "nested dict {'a': 3}"),
        ("{name[:2]}|{name[1:]}|{name[-2:]}|{rows[:1]}|{name[:]}", "Ad|da|da|['first']|Ada"),
    ],
)
def test_references_are_filled(text, expected):
    assert interpolate(text, NS) == expected


BRACES_LEFT_ALONE = [
    '{"a": 1, "b": [1, 2, {"c": null}]}',  # JSON
    "d = {x: 1 for x in range(3)}",  # dict comprehension
    "s = {1, 2, 3}; e = {}",  # set literal, empty dict
    'f"{value!r} {value:.2f} {value=}"',  # f-string conversions and formats
    "{ name }",  # spaced: not a reference
    "{name.}",  # not a valid reference
    "{{ jinja }}",  # template with spaces
    "${name} and $${n}",  # shell / JS template literals
    r"\frac{a}{b} + \sqrt{n} + x^{n} + \{name\} + \section*{name}",  # LaTeX
    r"\begin{equation} e^{i\pi} \end{equation}",
    r"\sqrt[3]{n} \frac{\partial f}{\partial x} \mathbb{R}^{n}",
    "{{name}",  # unbalanced: left exactly
]


@pytest.mark.parametrize("text", BRACES_LEFT_ALONE)
def test_other_braces_are_left_exactly(text):
    assert interpolate(text, {}) == text  # and no unknown-name error


def test_code_fences_spans_and_math_are_literal_zones():
    text = (
        "Fix this:\n"
        "```python\n"
        "def greet(name):\n"
        '    return f"Hello {name}, you have {n} messages"  # {name}\n'
        "data = {name: {n}}\n"
        "```\n"
        "Inline `{name}` and ``{n}`` stay; so does math $x_{name} + {n}$ and\n"
        "$$\n\\frac{a}{b} + {n}\n$$\n"
        "~~~\n{undefined_here}x\n~~~\n"
        "but {name} out here is filled."
    )
    expected = text.replace("but {name} out here", "but Ada out here")
    assert interpolate(text, NS) == expected


def test_a_reference_alone_on_a_fence_line_is_filled():
    text = "Explain this code:\n```python\n{In[3]}\n```\nand ```{In[1]}``` inline stays."
    assert interpolate(text, NS) == (
        "Explain this code:\n```python\ndef f(a):\n    return {a: 1}\n```\nand ```{In[1]}``` inline stays."
    )
    assert interpolate("```\n  {{In[3]}}  \n```", NS) == "```\n  {In[3]}  \n```"


def test_unclosed_fence_runs_to_the_end():
    text = "start {name}\n```\n{x} code {y}"
    assert interpolate(text, NS) == "start Ada\n```\n{x} code {y}"


def test_double_braces_escape_a_reference():
    assert interpolate("{{name}} is written {name}", NS) == "{name} is written Ada"
    assert interpolate("{{undefined.attr[0]}}", {}) == "{undefined.attr[0]}"


def test_unknown_name_is_an_error_with_suggestions():
    with pytest.raises(InterpolationError) as info:
        interpolate("Hello {nmae}", NS)
    assert info.value.ref == "nmae"
    assert "no variable named 'nmae'" in str(info.value)
    assert info.value.suggestions == ["name"]


def test_attribute_and_index_errors_say_what_is_wrong():
    with pytest.raises(InterpolationError, match="has no attribute 'nope'"):
        interpolate("{obj.nope}", NS)
    with pytest.raises(InterpolationError, match=r"rows\[5\] is out of range \(rows has 2 items\)"):
        interpolate("{rows[5]}", NS)
    with pytest.raises(InterpolationError, match=r"d has no key 'zz' \(keys: 'key', 'k2'\)"):
        interpolate("{d['zz']}", NS)
    with pytest.raises(InterpolationError, match=r"there is no Out\[9\] \(numbers so far: 2\)"):
        interpolate("{Out[9]}", NS)
    with pytest.raises(InterpolationError, match=r"there is no In\[7\]"):
        interpolate("{In[7]}", NS)
    with pytest.raises(InterpolationError, match="cannot be indexed"):
        interpolate("{n[0]}", NS)


def test_private_names_are_not_suggested_unless_asked():
    with pytest.raises(InterpolationError) as info:
        interpolate("{secrt}", {"_secret": 1, "secret": 2})
    assert info.value.suggestions == ["secret"]


def test_references_lists_what_would_be_filled():
    assert references("{a} {{b}} `{c}` {d.e[0]} \\frac{f}{g}") == ["a", "d.e[0]"]


def test_a_cell_full_of_code_json_and_latex():
    text = r"""Review this code and its config, and typeset the formula.

class Cache:
    def __init__(self):
        self.store = {}
        self.hits = {"total": 0}

    def key(self, *parts):
        return "|".join(f"{p!s}" for p in parts) or "{}"

config = {"retries": {"max": 3}, "codes": {429, 503}}

{"model": "x", "params": {"temperature": 0.2}}

The hit rate is $\frac{hits}{hits + misses}$, i.e. \frac{a}{b} with a_{i} and x^{2}.
Call it {n} times for {name}."""
    assert interpolate(text, NS) == text.replace("{n} times for {name}", "3 times for Ada")


def test_double_braces_are_the_escape_even_in_unfenced_code():
    """The one rewrite of brace text: ``{{x}}``.  Code in a fence is kept exactly."""
    assert interpolate('f"{{total}}"', {}) == 'f"{total}"'
    assert interpolate('```\nf"{{total}}"\n```', {}) == '```\nf"{{total}}"\n```'
