"""load()/loads(): choosing the reader, decoding bytes, filling `source`, and refusing bad input
with one actionable line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from stage5cli.errors import NotFoundError, Stage5Error, UsageError
from stage5cli.screenplay import detect_format, load, loads
from stage5cli.screenplay.decode import decode

SCRIPT = "Title: Kettle\n\nINT. KITCHEN - NIGHT\n\nThe kettle\tscreams.\n\nMARGO\nTurn it off.\n"


def elements(sp):
    return [(e.type, e.text, e.line) for e in sp.elements]


def test_load_fills_source(tmp_path):
    path = tmp_path / "kettle.fountain"
    data = SCRIPT.encode()
    path.write_bytes(data)
    sp = load(path)
    assert sp.source.path == str(path)
    assert sp.source.format == "fountain"
    assert sp.source.encoding == "utf-8"
    assert sp.source.sha256 == hashlib.sha256(data).hexdigest()
    assert sp.title == "Kettle"
    assert [s.heading for s in sp.scenes] == ["INT. KITCHEN - NIGHT"]
    assert load(str(path)) == sp  # str or Path


@pytest.mark.parametrize("name, fmt", [
    ("a.fountain", "fountain"), ("a.spmd", "fountain"), ("a.txt", "plain"), ("a.TXT", "plain"),
    ("a", "fountain"), ("a.md", "fountain"), ("a.pdf", "fountain"), ("a.fdx", "fountain"),
])
def test_format_by_extension_for_text(name, fmt):
    # a .pdf or .fdx name whose content is neither falls back to text
    assert detect_format(SCRIPT.encode(), name) == fmt


def test_format_by_content_beats_the_extension():
    assert detect_format(b"%PDF-1.7\n...", "script.fountain") == "pdf"
    assert detect_format(b"\n  <?xml version='1.0'?>\n<FinalDraft DocumentType='Script'>", "x.txt") == "fdx"
    assert detect_format(b"<FinalDraft>", "") == "fdx"
    assert detect_format("<FinalDraft>".encode("utf-16"), "") == "fdx"
    assert detect_format(b"INT. A <FinalDraft> mention in text", "a.fountain") == "fountain"
    assert detect_format(b"He types %PDF-1.4 into the box.", "a.txt") == "plain"


def test_explicit_format_overrides_detection():
    assert loads(SCRIPT.encode(), fmt="plain").source.format == "plain"
    with pytest.raises(UsageError, match="unknown script format"):
        loads(SCRIPT.encode(), fmt="docx")


@pytest.mark.parametrize("encoding, data", [
    ("utf-8", SCRIPT.encode("utf-8")),
    ("utf-8-sig", SCRIPT.encode("utf-8-sig")),
    ("utf-16", b"\xff\xfe" + SCRIPT.encode("utf-16-le")),
    ("utf-16", b"\xfe\xff" + SCRIPT.encode("utf-16-be")),
    ("utf-8", SCRIPT.replace("\n", "\r\n").encode()),
    ("utf-8", SCRIPT.replace("\n", "\r").encode()),
])
def test_encodings_and_line_endings_give_the_same_script(encoding, data):
    sp = loads(data, name="k.fountain")
    assert sp.source.encoding == encoding
    assert elements(sp) == elements(loads(SCRIPT.encode(), name="k.fountain"))
    assert sp.elements[1].text == "The kettle    screams."  # a tab is four spaces


def test_cp1252_fallback():
    text = "INT. CAF\u00c9 - DAY\n\nShe says \u201chello\u201d \u2014 twice.\n"
    data = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    sp = loads(data)
    assert sp.source.encoding == "cp1252"
    assert sp.scenes[0].location == "CAF\u00c9"
    assert sp.elements[1].text == "She says \u201chello\u201d \u2014 twice."


def test_line_numbers_survive_crlf_and_boneyard():
    src = "INT. A - DAY\r\n\r\n/* gone\r\ngone\r\n*/\r\n\r\nMARGO\r\nHi.\r\n"
    sp = loads(src.encode())
    assert [(e.type, e.line) for e in sp.elements] == [
        ("scene_heading", 1), ("character", 7), ("dialogue", 8)]


@pytest.mark.parametrize("data", [b"", b"   \n\n\t  \r\n", b"\xef\xbb\xbf  \n", "\n \n".encode("utf-16")])
def test_empty_script(data, tmp_path):
    path = tmp_path / "empty.fountain"
    path.write_bytes(data)
    with pytest.raises(UsageError) as info:
        load(path)
    assert str(info.value) == "script is empty"


@pytest.mark.parametrize("data", [
    b"INT. A\x00\x00 - DAY\n",  # NUL bytes
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image
    bytes(range(1, 32)) * 20,  # control characters
    b"caf\xe9 \x81\x8d\x8f\x90\x9d",  # not UTF-8, not cp1252 either
    b"\xff\xfe\x00\xd8",  # UTF-16 with a lone surrogate
], ids=["nul", "png", "controls", "undecodable", "bad-utf16"])
def test_binary_data_is_refused(data):
    with pytest.raises(UsageError) as info:
        loads(data, name="x.fountain")
    assert str(info.value) == "not a screenplay (binary data)"


def test_decode_keeps_form_feeds_and_tabs():
    text, enc = decode(b"A\tB\x0cC\n")
    assert (text, enc) == ("A\tB\x0cC\n", "utf-8")


def test_size_limit_names_the_flag(tmp_path):
    path = tmp_path / "big.fountain"
    path.write_bytes(b"Action.\n" * 200)
    with pytest.raises(UsageError) as info:
        load(path, max_bytes=1000)
    msg = str(info.value)
    assert "1,000-byte limit" in msg and "--max-size" in msg and "\n" not in msg
    assert load(path, max_bytes=2000).elements  # raising the limit lets it through


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(NotFoundError, match="script not found"):
        load(tmp_path / "nope.fountain")
    with pytest.raises(UsageError, match="is a folder"):
        load(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="permissions are not enforced for root")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.fountain"
    path.write_text(SCRIPT)
    path.chmod(0)
    try:
        with pytest.raises(UsageError, match="cannot read"):
            load(path)
    finally:
        path.chmod(0o644)


def test_no_scene_headings_is_fine(tmp_path):
    sp = loads(b"Just some action.\n\nJOHN\nHello.\n")
    assert [s.number for s in sp.scenes] == [0]
    assert {e.scene for e in sp.elements} == {0}


def test_errors_are_stage5_errors_with_exit_code_2():
    with pytest.raises(Stage5Error) as info:
        loads(b"")
    assert info.value.exit_code == 2


def test_vendored_data_is_present():
    root = Path(__file__).parent / "data"
    assert (root / "conformance" / "README.md").is_file()
    assert sorted(p.name for p in (root / "corpus").glob("*.fountain")) == [
        "ascent_to_guru_peak.fountain", "cyber_bob_ep1.fountain", "the_library_freak_out.fountain"]


def test_scene_by_number_whatever_the_numbering():
    from stage5cli.screenplay.model import Scene, Screenplay

    def play(numbers):
        return Screenplay(scenes=[Scene(number=n, heading=f"H{n}") for n in numbers])

    assert play([0, 1, 2, 3]).scene(2).heading == "H2"
    assert play([1, 2, 3]).scene(1).heading == "H1"  # no text before the first heading
    assert play([1, 2, 3]).scene(0) is None and play([1, 2, 3]).scene(4) is None
    assert play([0, 2, 5]).scene(5).heading == "H5"  # gaps: found by a scan
    assert play([3, 1]).scene(1).heading == "H1"
    assert play([]).scene(0) is None
    assert play([0, 1]).scene(-1) is None
