"""The 224 Fountain conformance cases (tests/data/conformance, vendored with its README).

Comparison rules are those of the README ("Comparison rules for a test harness"), rules 1-8:
texts normalised (line endings, trailing whitespace), same types in the same order, optional
attributes compared when expected and absent otherwise, title-page keys case-insensitive, notes
kept (default mode), `html` compared as a sequence of (character, set of styles).
Our element list for a case is [title_page element, if any] + Screenplay.elements.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from stage5cli.screenplay import parse_fountain
from stage5cli.screenplay.model import Element

DATA = Path(__file__).parent / "data" / "conformance"
CASES = yaml.safe_load((DATA / "fountain_cases.yaml").read_text(encoding="utf-8"))
OPTIONAL = ("scene_number", "dual", "extensions", "notes", "depth")
# Ids we deliberately read differently from `expected` (README rule 9). None so far.
XFAIL: dict[str, str] = {}

_TAG = re.compile(r"<(/?)([biu])>")


def norm(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n"))


def styled_chars(markup: str) -> list[tuple[str, frozenset[str]]]:
    """README rule 7: <b><i>x</i></b> == <i><b>x</b></i>, <u>a </u><u>b</u> == <u>a b</u>."""
    out: list[tuple[str, frozenset[str]]] = []
    open_styles: list[str] = []
    pos = 0
    for m in _TAG.finditer(markup):
        for ch in html.unescape(markup[pos : m.start()]):
            out.append((ch, frozenset(open_styles)))
        if m.group(1):
            open_styles.remove(m.group(2))
        else:
            open_styles.append(m.group(2))
        pos = m.end()
    for ch in html.unescape(markup[pos:]):
        out.append((ch, frozenset(open_styles)))
    return out


def our_elements(text: str) -> list[dict]:
    sp = parse_fountain(text)
    els: list[dict] = []
    if sp.title_page:
        els.append({"type": "title_page", "entries": [e.model_dump() for e in sp.title_page]})
    dump = TypeAdapter(Element).dump_python  # elements are validated dataclasses
    els.extend(dump(e, exclude_none=True) for e in sp.elements)
    return els


def compare(expected: list[dict], actual: list[dict]) -> list[str]:
    """Differences under the README's rules; [] when the case passes."""
    problems: list[str] = []
    exp_types = [e["type"] for e in expected]
    act_types = [a["type"] for a in actual]
    if exp_types != act_types:
        return [f"types differ: expected {exp_types}, got {act_types}"]
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        where = f"element {i} ({e['type']})"
        if e["type"] == "title_page":
            want = [(x["key"].lower(), norm(x["value"])) for x in e["entries"]]
            got = [(x["key"].lower(), norm(x["value"])) for x in a.get("entries") or []]
            if want != got:
                problems.append(f"{where}: entries {got!r} != {want!r}")
            continue
        if "text" in e and norm(a.get("text", "")) != e["text"]:
            problems.append(f"{where}: text {norm(a.get('text', ''))!r} != {e['text']!r}")
        if "name" in e and a.get("name") != e["name"]:
            problems.append(f"{where}: name {a.get('name')!r} != {e['name']!r}")
        for attr in OPTIONAL:
            want = e.get(attr)
            got = a.get(attr) or None  # an empty list is "none"
            if attr == "notes" and got is not None:
                got = [norm(n) for n in got]
            if want != got:
                problems.append(f"{where}: {attr} {got!r} != {want!r}")
        if "html" in e:
            got_html = a.get("html", a.get("text", ""))
            if styled_chars(norm(got_html)) != styled_chars(e["html"]):
                problems.append(f"{where}: html {got_html!r} != {e['html']!r}")
    return problems


def _param(case: dict):
    marks = [pytest.mark.xfail(reason=XFAIL[case["id"]], strict=True)] if case["id"] in XFAIL else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_vendored_file_is_complete():
    assert len(CASES) == len({c["id"] for c in CASES}) == 224
    assert (DATA / "README.md").is_file(), "the README (licences, attribution) travels with the YAML"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(case):
    problems = compare(case["expected"], our_elements(case["input"]))
    assert not problems, "\n".join(problems)


def test_harness_catches_differences():
    """The comparison itself can fail: a wrong type, text, attribute or style is reported."""
    exp = [{"type": "action", "text": "a *b*", "html": "a <i>b</i>"}]
    assert compare(exp, [{"type": "action", "text": "a *b*", "html": "a <i>b</i>"}]) == []
    assert compare(exp, [{"type": "action", "text": "a *b*", "html": "a <b>b</b>"}])
    assert compare(exp, [{"type": "dialogue", "text": "a *b*"}])
    assert compare(exp, [{"type": "action", "text": "a *c*", "html": "a <i>b</i>"}])
    assert compare([{"type": "action", "text": "x"}], [{"type": "action", "text": "x", "notes": ["n"]}])
    assert styled_chars("<b><i>x</i></b>") == styled_chars("<i><b>x</b></i>")
    assert styled_chars("<u>a </u><u>b</u>") == styled_chars("<u>a b</u>")
