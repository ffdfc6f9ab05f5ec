"""Breakdown for scheduling: categories, page eighths, breakdown sheets, tagged FDX, FDX tags read."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import defusedxml.ElementTree as DET
import pytest

from stage5cli.breakdown import categories as cats
from stage5cli.breakdown.pages import (
    LINES_PER_PAGE,
    eighths,
    format_eighths,
    page_count,
    scene_lengths,
)
from stage5cli.breakdown.sheet import CSV_HEADER, colours
from stage5cli.errors import UsageError
from stage5cli.models import ExtractedAsset, Mention
from stage5cli.screenplay import load, loads, parse_fountain
from tests.conftest import CORPUS, REPO, needs_shared, one_line_error

DATA = REPO / "tests" / "data" / "breakdown"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _extract(cli, root: Path, script: Path) -> list[dict]:
    for args in (("init", root), ("style", "lock", "film-noir", "-p", root)):
        assert cli(*args).exit_code == 0
    r = cli("extract", script, "-p", root)
    assert r.exit_code == 0, r.output
    r = cli("review", "--json", "-p", root)
    return json.loads(r.stdout)


def _by(assets: list[dict], kind: str, name: str) -> dict:
    return next(a for a in assets if a["type"] == kind and a["name"].lower() == name.lower())


# ---- categories ------------------------------------------------------------------------------


def test_extracted_assets_get_categories(cli, tmp_path):
    assets = _extract(cli, tmp_path / "p", DATA / "van_and_dog.fountain")
    assert _by(assets, "prop", "van")["category"] == "vehicles"      # the van is a vehicle...
    van_set = _by(assets, "location", "VAN")                          # ...and a set
    assert van_set["category"] == "sets"
    assert van_set["category_info"] == {"int_ext": ["INT"], "times": ["NIGHT"]}
    assert _by(assets, "location", "STREET")["category"] == "locations"
    assert _by(assets, "prop", "pistol")["category"] == "weapons"
    scarf = _by(assets, "prop", "red scarf")
    assert scarf["category"] == "wardrobe" and scarf["category_info"]["wearer"] == "MARA"
    mara = _by(assets, "character", "MARA")
    assert mara["category"] == "cast" and mara["category_info"] == {"speaking": True, "lines": 2}
    assert _by(assets, "character", "WAITER")["category"] == "background"
    assert not any(a["name"] == "DOG" and a["category"] == "cast" for a in assets)  # silent


def test_a_dog_is_cast_only_when_it_speaks(cli, tmp_path):
    assets = _extract(cli, tmp_path / "p", DATA / "talking_dog.fountain")
    dog = _by(assets, "character", "DOG")
    assert dog["category"] == "cast" and dog["category_info"]["speaking"] is True
    sp = load(DATA / "van_and_dog.fountain")
    silent = ExtractedAsset(name="DOG", type="character",
                            mentions=[Mention(scene_number=1, text="DOG")])
    assert cats.assign_category(silent, sp).category == "animals"
    as_prop = silent.model_copy(update={"type": "prop"})
    assert cats.assign_category(as_prop, sp).category == "animals"


def _sp(body: str):
    return parse_fountain(body)


def test_wardrobe_records_the_wearer():
    sp = _sp("INT. ROOM - DAY\n\nMARA wears a RED COAT. ELIAS waits.\n\nMARA\nGo.\n")
    mara = ExtractedAsset(name="MARA", type="character", mentions=[Mention(scene_number=1)])
    elias = ExtractedAsset(name="ELIAS", type="character", mentions=[Mention(scene_number=1)])
    coat = ExtractedAsset(name="RED COAT", type="prop", mentions=[Mention(scene_number=1)])
    got = cats.assign_category(coat, sp, people=[mara, elias])
    assert got.category == "wardrobe" and got.info["wearer"] == "MARA"
    # a possessive in the name, and "his" after another character
    owned = ExtractedAsset(name="ELIAS'S HAT", type="prop", mentions=[Mention(scene_number=1)])
    assert cats.assign_category(owned, sp, people=[mara, elias]).info["wearer"] == "ELIAS"
    sp2 = _sp("INT. ROOM - DAY\n\nMARA hands ELIAS his GLOVES.\n")
    gloves = ExtractedAsset(name="GLOVES", type="prop", mentions=[Mention(scene_number=1)])
    assert cats.assign_category(gloves, sp2, people=[mara, elias]).info["wearer"] == "ELIAS"
    # nobody wears a coat lying on a chair
    sp3 = _sp("INT. ROOM - DAY\n\nA RED COAT hangs on a hook. MARA ignores it.\n")
    assert "wearer" not in cats.assign_category(coat, sp3, people=[mara, elias]).info


def test_rules_for_props_and_characters():
    sp = _sp("INT. ROOM - DAY\n\nThe SOFA sags. MARA pushes the ARMCHAIR to the door.\n\n"
             "TWO GUARDS and a WAITRESS watch. COLONEL STRAND does not.\n")

    def cat(name: str, kind: str = "prop") -> str:
        a = ExtractedAsset(name=name, type=kind, mentions=[Mention(scene_number=1)])
        return cats.assign_category(a, sp).category

    assert cat("SOFA") == "set-dressing" and cat("ARMCHAIR") == "props"  # handled
    assert cat("WEDDING DRESS") == "wardrobe" and cat("POLICE CAR") == "vehicles"
    assert cat("CAR KEYS") == "props" and cat("WIG") == "makeup-hair"
    assert cat("TWO GUARDS", "character") == "background"
    assert cat("WAITRESS", "character") == "background"
    assert cat("COLONEL STRAND", "character") == "cast"  # named, even if silent
    # plurals fold as the extractor folds them (stage5cli/extract/nouns.py): -ives to -ife,
    # -oes to -o, LENS stays whole
    assert cat("KITCHEN KNIVES") == "weapons" and cat("RUSTY MACHETES") == "weapons"


def test_llm_category_is_used_when_valid():
    from stage5cli.extract.chunks import split_chunks
    from stage5cli.extract.litellm_extractor import parse_pass1

    sp = load(DATA / "van_and_dog.fountain")
    chunk = split_chunks(sp, 6000)[0]
    answer = {"entities": [
        {"name": "VAN", "type": "prop", "category": "Picture Vehicles", "mentions": [{"sceneNumber": 1}]},
        {"name": "DOG", "type": "prop", "category": "banana", "mentions": [{"sceneNumber": 1}]},
        {"name": "MARA", "type": "character", "category": 7, "mentions": [{"sceneNumber": 1}]},
        {"name": "STREET", "type": "location", "category": "props", "mentions": [{"sceneNumber": 1}]},
        {"name": "PISTOL", "type": "prop", "category": "set dressing", "mentions": [{"sceneNumber": 2}]},
    ]}
    got = {a.name: a.extra for a in cats.finish_extraction(parse_pass1(answer, chunk), sp)}
    assert got["VAN"]["category"] == "vehicles" and got["VAN"]["category_source"] == "llm"
    assert got["PISTOL"]["category"] == "set-dressing" and got["PISTOL"]["category_source"] == "llm"
    assert got["DOG"]["category"] == "animals" and got["DOG"]["category_source"] == "rule"
    assert got["MARA"]["category"] == "cast" and got["MARA"]["category_source"] == "rule"
    assert got["STREET"]["category"] == "locations"  # props is not a location category


def test_category_names_and_the_final_draft_table():
    assert cats.normalize_category("Cast Members") == "cast"
    assert cats.normalize_category("set dressing") == "set-dressing"
    assert cats.normalize_category("Makeup/Hair") == "makeup-hair"
    assert cats.normalize_category("nonsense") is None
    assert cats.from_fd_name("Greenery Wrangling") == "misc"
    assert cats.from_fd_name("Location", ["EXT"]) == "locations"
    assert cats.from_fd_name("Location", ["INT", "EXT"]) == "sets"
    assert cats.from_fd_name("Special Effects") == "sfx"
    ids = [c.fd_id for c in cats.CATEGORIES]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)
    assert len({c.fd_id for c in cats.CATEGORIES}) == len(cats.CATEGORIES) - 1  # sets, locations
    with pytest.raises(UsageError, match="unknown category"):
        cats.parse_category("banana")


# ---- page eighths ----------------------------------------------------------------------------


def _action_lines(n: int) -> str:
    return "\n".join(f"Line {i}." for i in range(n))


def test_eighths_of_synthetic_scenes():
    # heading (1) + blank (1) + 53 action lines = 55 lines: exactly one page
    one_page = _sp(f"INT. A - DAY\n\n{_action_lines(53)}\n\nINT. B - DAY\n\nShort.\n")
    a, b = scene_lengths(one_page)
    assert (a.lines, a.eighths, a.page) == (LINES_PER_PAGE, 8, 1)
    assert (b.eighths, b.page) == (1, 2)  # minimum 1/8, on page 2
    half = _sp(f"INT. A - DAY\n\n{_action_lines(26)}\n\nINT. B - DAY\n\nShort.\n")
    assert scene_lengths(half)[0].lines == 28 and scene_lengths(half)[0].eighths == 4
    assert eighths(1) == 1 and eighths(27) == 4 and eighths(110) == 16
    assert format_eighths(8) == "1" and format_eighths(4) == "4/8" and format_eighths(11) == "1 3/8"
    assert page_count(one_page) == 2


def test_long_lines_wrap_at_their_element_width():
    action = _sp("INT. A - DAY\n\n" + "word " * 24 + "\n")  # 120 characters: 2 lines at 60
    dialogue = _sp("INT. A - DAY\n\nMARA\n" + "word " * 24 + "\n")  # 4 lines at 35
    assert scene_lengths(action)[0].lines == 1 + 1 + 2
    assert scene_lengths(dialogue)[0].lines == 1 + 1 + 1 + 4


@needs_shared
def test_big_fish_page_count_is_close_to_print():
    pages = page_count(load(CORPUS / "big_fish.fountain"))
    assert abs(pages - 119) <= 6, pages  # printed: about 119 pages (SOURCES.md)


# ---- CSV, HTML -------------------------------------------------------------------------------


@pytest.fixture
def lamp(cli, tmp_path) -> Path:
    root = tmp_path / "lamp"
    _extract(cli, root, REPO / "examples" / "scripts" / "the_last_lamp.fountain")
    return root


def test_breakdown_json_and_scene(lamp, cli):
    r = cli("breakdown", "--json", "-p", lamp)
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)
    assert [s["number"] for s in b["scenes"]] == list(range(1, 12))
    first = b["scenes"][0]
    assert first["int_ext"] == "INT" and first["day_night"] == "Night" and first["page"] == 1
    assert [a["name"] for a in first["assets"]["cast"]] == ["MARA"]
    assert b["total_eighths"] == sum(s["eighths"] for s in b["scenes"])
    r = cli("breakdown", "--scene", "5", "-p", lamp)
    assert r.exit_code == 0 and "LIGHTHOUSE GALLERY" in r.stdout and "HARBOUR MASTER" in r.stdout
    r = cli("breakdown", "--scene", "99", "-p", lamp)
    assert r.exit_code == 2 and "no scene 99" in one_line_error(r)


def test_breakdown_csv_header_is_stable_and_documented(lamp, cli, tmp_path):
    out = tmp_path / "b.csv"
    r = cli("export", "--format", "breakdown-csv", "--draft", "--out", out, "-p", lamp)
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_HEADER == (
        "scene", "script_scene_number", "heading", "int_ext", "location", "time_of_day",
        "day_night", "page", "eighths", "length", "category", "fd_category", "asset_id", "asset",
        "asset_type", "wearer")
    assert all(len(r) == len(CSV_HEADER) for r in rows)
    assert {r[0] for r in rows[1:]} == {str(n) for n in range(1, 12)}
    assert ",".join(CSV_HEADER) in (REPO / "README.md").read_text(encoding="utf-8")
    r = cli("export", "--format", "breakdown-csv", "-p", lamp)
    assert r.exit_code == 3 and "--draft" in one_line_error(r)  # the export gate, as for json


def test_breakdown_colours_are_configurable(monkeypatch):
    monkeypatch.setenv("STAGE5_BREAKDOWN_COLOURS", "cast=#123456, Props=#abcdef")
    got = colours()
    assert got["cast"] == "#123456" and got["props"] == "#abcdef"
    assert got["wardrobe"] == cats.by_id("wardrobe").colour
    for bad in ("cast", "banana=#123456", "cast=red"):
        with pytest.raises(UsageError):
            colours(bad)


def _html(cli, root: Path, out: Path) -> str:
    r = cli("export", "--format", "breakdown-html", "--draft", "--out", out, "-p", root)
    assert r.exit_code == 0, r.output
    return out.read_text(encoding="utf-8")


def test_breakdown_html_is_self_contained(lamp, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("STAGE5_BREAKDOWN_COLOURS", "cast=#0a0b0c")
    page = _html(cli, lamp, tmp_path / "sheets.html")
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)\s*=", page, re.I)
    assert page.count('<article class="sheet"') == 11
    assert "background:#0a0b0c" in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.slow
def test_breakdown_html_renders_in_chromium(lamp, cli, tmp_path):
    from PIL import Image

    sheet = tmp_path / "sheets.html"
    page = _html(cli, lamp, sheet)
    profile = tmp_path / "profile"
    profile.mkdir()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    shot = tmp_path / "shot.png"
    done = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1000,1400", sheet.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as im:
        colours_seen = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours_seen is not None and len(colours_seen) > 20
        red = tuple(int(cats.by_id("cast").colour[i:i + 2], 16) for i in (1, 3, 5))
        assert any(c == red for _, c in colours_seen)  # the cast box header is drawn
    probe = sheet.with_name("probe.html")
    probe.write_text(page.replace("</body>", "<script>document.body.dataset.sheets="
                                  "document.querySelectorAll('article.sheet').length;"
                                  "document.body.dataset.boxes=document.querySelectorAll("
                                  "'section.box').length;</script></body>"), encoding="utf-8")
    done = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                          timeout=120, check=False)
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stderr[-2000:]
    found = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))
    assert found["sheets"] == "11" and int(found["boxes"]) >= 11 * 6


# ---- FDX export ------------------------------------------------------------------------------


def _printed(sp) -> list[tuple[str, str]]:
    from stage5cli.breakdown.pages import _text

    return [(e.type, _text(e)) for e in sp.elements
            if e.type not in ("section", "synopsis", "note", "page_break", "title_page")]


def _check_tags(xml: str) -> dict[int, list[str]]:
    """Every TagNumber resolves to a Tag, every DefId to a definition, every CatId to a category.
    Returns TagNumber -> the labels it carries."""
    root = DET.fromstring(xml.encode("utf-8"))
    td = root.find("TagData")
    cat_ids = {c.get("Id") for c in td.find("TagCategories")}
    labels = {}
    for d in td.find("TagDefinitions"):
        assert d.get("CatId") in cat_ids, d.attrib
        labels[d.get("Id")] = d.get("Label")
    tags = {int(t.get("Number")): [labels[x.text] for x in t.findall("DefId")] for t in td.find("Tags")}
    used = {int(t.get("TagNumber")) for t in root.iter("Text") if t.get("TagNumber")}
    assert used and used <= set(tags), used - set(tags)
    return tags


def test_fdx_export_from_fountain_round_trips(lamp, cli, tmp_path):
    out = tmp_path / "lamp.fdx"
    r = cli("export", "--format", "fdx", "--draft", "--out", out, "-p", lamp)
    assert r.exit_code == 0, r.output
    xml = out.read_text(encoding="utf-8")
    tags = _check_tags(xml)
    assert ["MARA"] in tags.values() and ["LIGHTHOUSE LAMP ROOM"] in tags.values()
    back = load(out)
    original = load(REPO / "examples" / "scripts" / "the_last_lamp.fountain")
    assert _printed(back) == _printed(original)
    assert [s.heading for s in back.scenes] == [s.heading for s in original.scenes]
    assert back.title == original.title
    assert back.tags and {t.label for t in back.tags} >= {"MARA", "ELIAS", "HARBOUR"}
    cast = next(t for t in back.tags if t.label == "MARA")
    assert cast.category == "Cast Members" and {s.scene for s in cast.spans} >= {1, 2, 3}


def _paragraphs(data: bytes) -> list[tuple[dict, str]]:
    root = DET.fromstring(data)
    out = []
    for p in root.find("Content").iter("Paragraph"):
        text = "".join("".join(t.itertext()) for t in p.findall("Text"))
        out.append((dict(p.attrib), text))
    return out


def test_fdx_export_of_an_fdx_only_adds_tags(cli, tmp_path):
    src = REPO / "examples" / "scripts" / "the_night_ferry.fdx"
    root = tmp_path / "ferry"
    _extract(cli, root, src)
    out = tmp_path / "out.fdx"
    assert cli("export", "--format", "fdx", "--draft", "--out", out, "-p", root).exit_code == 0
    assert _paragraphs(out.read_bytes()) == _paragraphs(src.read_bytes())
    _check_tags(out.read_text(encoding="utf-8"))
    assert _printed(load(out)) == _printed(load(src))
    # every <Text> keeps its attributes (only TagNumber is added)
    before = [set(t.attrib) for t in DET.fromstring(src.read_bytes()).iter("Text")]
    after = [set(t.attrib) - {"TagNumber"} for t in DET.fromstring(out.read_bytes()).iter("Text")]
    assert set(map(frozenset, after)) <= set(map(frozenset, before))


# ---- FDX tags on import ----------------------------------------------------------------------


def test_fdx_tags_become_assets(cli, tmp_path):
    root = tmp_path / "tags"
    assets = _extract(cli, root, DATA / "tagged.fdx")
    mara = _by(assets, "character", "MARA QUINN")
    assert mara["origin"] == "script-tags" and mara["confidence_score"] == 1.0
    assert mara["category"] == "cast" and mara["aliases"] == ["MARA"] and mara["scenes"] == [1, 2]
    oilskin = _by(assets, "prop", "OILSKIN")
    assert oilskin["category"] == "wardrobe" and oilskin["category_info"]["wearer"] == "MARA QUINN"
    assert _by(assets, "prop", "DINGHY")["category"] == "vehicles"
    assert _by(assets, "location", "BOATHOUSE")["category"] == "sets"
    assert _by(assets, "location", "SLIPWAY")["category"] == "locations"
    elias = _by(assets, "character", "ELIAS")  # untagged: still found by the extractor
    assert elias["origin"] == "extracted" and elias["category"] == "cast"
    # re-extraction never overrides them, even if the user edits the extracted ones
    assert cli("extract", DATA / "tagged.fdx", "-p", root).exit_code == 0
    again = json.loads(cli("review", "--json", "-p", root).stdout)
    assert _by(again, "character", "MARA QUINN") == mara
    # parse --json shows the tags
    r = cli("parse", "--json", DATA / "tagged.fdx")
    tags = json.loads(r.stdout)["tags"]
    assert {t["label"]: t["category"] for t in tags}["OILSKIN"] == "Wardrobe"


BAD_TAGS = """<?xml version="1.0" encoding="UTF-8"?>
<FinalDraft DocumentType="Script" Template="No" Version="5"><Content>
<Paragraph Type="Scene Heading"><Text>INT. SHED - DAY</Text></Paragraph>
<Paragraph Type="Action"><Text TagNumber="1">ROPE</Text><Text> and a </Text><Text TagNumber="7">GHOST</Text><Text> and a </Text><Text TagNumber="2">FERN</Text></Paragraph>
</Content><TagData>
<TagCategories><TagCategory Id="c1" Name="Props" Number="6"/><TagCategory Id="c9" Name="Plant Life" Number="40"/></TagCategories>
<TagDefinitions><TagDefinition CatId="c1" Id="d1" Label="ROPE" Number="1"/><TagDefinition CatId="c9" Id="d2" Label="FERN" Number="2"/></TagDefinitions>
<Tags><Tag Number="1"><DefId>d1</DefId></Tag><Tag Number="2"><DefId>d2</DefId></Tag><Tag Number="3"><DefId>d404</DefId></Tag><Tag Number="4"><DefId>d1</DefId></Tag></Tags>
</TagData></FinalDraft>"""


def test_bad_tag_data_is_ignored_with_warnings(cli, tmp_path):
    sp = loads(BAD_TAGS.encode(), name="bad.fdx")
    assert {t.label for t in sp.tags} == {"ROPE", "FERN"}
    text = " | ".join(sp.tag_warnings)
    assert "'d404'" in text and "'GHOST'" in text and "tag 4 ('ROPE') tags no text" in text
    got = {a.name: a.extra["category"] for a in cats.finish_extraction([], sp)}
    assert got == {"ROPE": "props", "FERN": "misc"}  # an unknown category is misc
    path = tmp_path / "bad.fdx"
    path.write_text(BAD_TAGS, encoding="utf-8")
    r = cli("parse", path)
    assert r.exit_code == 0 and "d404" in r.stderr and "GHOST" in r.stderr


def test_no_scene_headings_is_scene_zero_with_a_warning(lamp, cli, tmp_path):
    flat = tmp_path / "flat.fountain"
    flat.write_text("Title: Flat\n\nMARA walks along the shore.\n\nMARA\nHello, sea.\n",
                    encoding="utf-8")
    r = cli("breakdown", "--json", "--script", flat, "-p", lamp)
    assert r.exit_code == 0, r.output
    b = json.loads(r.stdout)
    assert [s["number"] for s in b["scenes"]] == [0] and b["scenes"][0]["eighths"] == 1
    assert any("no scene headings" in w for w in b["warnings"])
    assert "no scene headings" in r.stderr


# ---- edit / review --category ----------------------------------------------------------------


def test_edit_and_review_category(lamp, cli):
    r = cli("edit", "lens", "--category", "set dressing", "-p", lamp)
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("review", "--json", "--category", "set-dressing", "-p", lamp).stdout)
    assert [a["name"] for a in rows] == ["lens"] and "category" in rows[0]["user_fields"]
    assert cli("extract", REPO / "examples" / "scripts" / "the_last_lamp.fountain", "-p", lamp).exit_code == 0
    rows = json.loads(cli("review", "--json", "-c", "set-dressing", "-p", lamp).stdout)
    assert [a["name"] for a in rows] == ["lens"]  # user-owned: re-extraction keeps it
    r = cli("edit", "lens", "--category", "banana", "-p", lamp)
    assert r.exit_code == 2 and "unknown category" in one_line_error(r)
    r = cli("edit", "MARA", "--category", "sets", "-p", lamp)
    assert r.exit_code == 2 and "location" in one_line_error(r)
    r = cli("review", "--category", "nope", "-p", lamp)
    assert r.exit_code == 2
    cli("undo", "--yes", "-p", lamp)  # the extraction
    assert cli("undo", "--yes", "-p", lamp).exit_code == 0  # the category edit
    rows = json.loads(cli("review", "--json", "-p", lamp).stdout)
    assert _by(rows, "prop", "lens")["category"] == "props"


# ---- every corpus script ---------------------------------------------------------------------


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("name", ["brick_and_steel", "the_last_birthday_card", "printing_trouble",
                                  "big_fish", "ascent_to_guru_peak", "cyber_bob_ep1",
                                  "the_library_freak_out"])
def test_breakdown_and_exports_on_corpus(cli, tmp_path, name):
    src = CORPUS / f"{name}.fountain"
    root = tmp_path / "p"
    _extract(cli, root, src)
    b = json.loads(cli("breakdown", "--json", "-p", root).stdout)
    assert b["scenes"] and all(s["eighths"] >= 1 for s in b["scenes"])
    for fmt in ("breakdown-csv", "breakdown-html", "fdx"):
        out = tmp_path / f"out.{fmt}"
        r = cli("export", "--format", fmt, "--draft", "--out", out, "-p", root)
        assert r.exit_code == 0, r.output
    _check_tags(Path(tmp_path / "out.fdx").read_text(encoding="utf-8"))
    assert _printed(load(tmp_path / "out.fdx")) == _printed(load(src))
