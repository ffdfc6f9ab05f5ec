"""Random text and random bytes never raise anything but a Stage5Error, and parsing is
deterministic (the same input always gives the same model)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stage5cli.errors import Stage5Error
from stage5cli.screenplay import loads, parse_fountain
from stage5cli.screenplay.plain import parse_plain

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# lines built from Fountain's own markers, so the rules (not only the fallbacks) get exercised
_PIECES = ["INT. HOUSE - DAY", "EXT", ".", "..", "!", "@", "~", ">", "<", "#", "##", "=", "===",
           "[[", "]]", "/*", "*/", "*", "**", "_", "\\", "^", "(", ")", "CUT TO:", "Title:",
           "  ", "\t", "JOHN", "hello", "#1A#", "12", " ", "\r", "\ufeff", "é", "😆"]
fountainish = st.lists(
    st.lists(st.sampled_from(_PIECES), max_size=6).map("".join), max_size=30
).map("\n".join)


def _check_text(text: str) -> None:
    first = parse_fountain(text)
    assert parse_fountain(text) == first
    assert parse_plain(text) == parse_plain(text)
    for scene in first.scenes:
        start, end = scene.element_range
        assert 0 <= start <= end <= len(first.elements)
    assert all(e.line >= 1 for e in first.elements)


@FUZZ
@given(st.text())
def test_random_text(text):
    _check_text(text)


@FUZZ
@given(fountainish)
def test_fountain_shaped_text(text):
    _check_text(text)


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from([None, "fountain", "plain", "fdx", "pdf"]))
def test_random_bytes(data, fmt):
    try:
        first = loads(data, name="fuzz.bin", fmt=fmt)
    except Stage5Error as exc:
        assert "\n" not in str(exc)
        return
    assert loads(data, name="fuzz.bin", fmt=fmt) == first


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([b"%PDF-1.4\n", b"<FinalDraft>", b"<?xml version='1.0'?>"]))
def test_random_bytes_behind_a_magic_number(tail, magic):
    try:
        loads(magic + tail, name="fuzz")
    except Stage5Error as exc:
        assert "\n" not in str(exc)
