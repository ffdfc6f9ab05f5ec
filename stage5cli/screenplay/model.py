"""The one Screenplay model every reader produces and every later step reads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic.dataclasses import dataclass

ElementType = Literal[
    "title_page",
    "scene_heading",
    "action",
    "centered",
    "character",
    "parenthetical",
    "dialogue",
    "lyrics",
    "transition",
    "page_break",
    "section",
    "synopsis",
    "note",
]


class TitleEntry(BaseModel):
    key: str
    value: str


@dataclass(slots=True)
class Element:
    """One element in the canonical reading of ../shared/conformance/README.md.

    Optional fields are None when they do not apply (the conformance rule "report none").
    `scene` is the number of the scene the element belongs to (0 before the first heading);
    `line` is the 1-based line of the source where the element starts.

    Elements and scenes are validated slotted dataclasses, not models: a 10 MB script has
    hundreds of thousands of them, and a model instance (a dict of every field and a set of
    the fields given) took ~770 bytes where a slotted one takes ~140; they are validated and
    serialised through the Screenplay model as before.
    """

    type: ElementType
    text: str = ""
    scene: int = 0
    line: int = 0
    # title_page
    entries: list[TitleEntry] | None = None
    # scene_heading
    scene_number: str | None = None
    # character
    name: str | None = None
    extensions: list[str] | None = None
    dual: Literal["left", "right"] | None = None
    # section
    depth: int | None = None
    # inline [[notes]] cut out of the host text
    notes: list[str] | None = None
    # emphasis rendered (<b>, <i>, <u>, escapes resolved); None when the text has no markup
    html: str | None = None


@dataclass(slots=True)
class Scene:
    number: int  # headings counted from 1; 0 is the text before the first heading
    heading: str
    int_ext: str | None = None  # "INT", "EXT", "INT/EXT", "EST" or None (forced/unknown)
    location: str = ""
    time_of_day: str | None = None
    scene_number: str | None = None  # as written (#12A#), if any
    line: int = 0
    element_range: tuple[int, int] = (0, 0)  # [start, end) indexes into Screenplay.elements
    # added by the parser: a forced heading (Fountain ".SNIPER SCOPE POV"; FDX has none), and the
    # bracketed or parenthesised tags kept out of `location` ("1973", "FLASHBACK", "PRESENT")
    forced: bool = False
    tags: list[str] | None = None


class TagSpan(BaseModel):
    """One tagged run of text: `element` indexes Screenplay.elements, [start, end) its text."""

    element: int
    scene: int
    start: int
    end: int
    text: str


class ScriptTag(BaseModel):
    """A breakdown tag the script itself carries (FDX TagData): one tag definition."""

    label: str
    category: str  # the file's tag category name, e.g. "Cast Members"
    definition_id: str = ""
    numbers: list[int] = Field(default_factory=list)  # the TagNumbers that point to it
    spans: list[TagSpan] = Field(default_factory=list)


class Source(BaseModel):
    path: str | None = None
    format: Literal["fountain", "fdx", "pdf", "plain"] = "fountain"
    sha256: str = ""
    encoding: str = "utf-8"


class Screenplay(BaseModel):
    title_page: list[TitleEntry] = Field(default_factory=list)
    scenes: list[Scene] = Field(default_factory=list)
    elements: list[Element] = Field(default_factory=list)
    source: Source = Field(default_factory=Source)
    # FDX only: the tags of its TagData (None when the file has none), and what was ignored
    tags: list[ScriptTag] | None = None
    tag_warnings: list[str] | None = None

    @property
    def title(self) -> str | None:
        for entry in self.title_page:
            if entry.key.lower() == "title":
                return " ".join(entry.value.split()) or None
        return None

    def scene_elements(self, scene: Scene) -> list[Element]:
        start, end = scene.element_range
        return self.elements[start:end]

    def scene(self, number: int) -> Scene | None:
        """The scene with this number (0 is the text before the first heading), if any."""
        scenes = self.scenes
        if scenes:  # numbered in order from the first: found by position, not by a scan
            i = number - scenes[0].number
            if 0 <= i < len(scenes) and scenes[i].number == number:
                return scenes[i]
        for scene in scenes:
            if scene.number == number:
                return scene
        return None
