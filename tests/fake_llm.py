"""An OpenAI-compatible fake LLM on tests/loopback.py, for tests and benchmarks.

It serves POST /v1/chat/completions. Pass-1 requests (a `<<<SCRIPT` block of `[Scene N]`
scenes) are answered by finding names in the chunk: speakers from `NAME: ...` lines, places
from scene headings, props from CAPITALISED words after an article. Pass-2 requests (`Asset: ...`)
get a valid 4-sentence distillation, conflict requests a valid suggestion, and a repair
request (an assistant turn followed by a user turn) a valid answer to the original question.

Switches make it answer like a real model would: inside a Markdown fence with prose around
it (`fenced`), with entities the chunk never names (`invent`), with a character named
differently in every chunk (`variants`). Others make it misbehave: garbage answers (always, or for requests naming a string),
invalid JSON once, a schema error once, 429 / 500 / a dropped connection for the first N
requests, a delay, a hang, a 401 that echoes the Authorization header.

    with FakeLLM(delay=0.3) as llm:
        settings = LLMOptions(model="openai/fake", api_base=llm.api_base)
"""

from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass, field

from stage5cli.screenplay.model import Element, Scene, Screenplay

from .loopback import LoopbackServer, Reply, Request, chat_reply

_SCENE = re.compile(r"^\[Scene (\d+)\]\s*(.*)$")
_CUE = re.compile(r"^([A-Z][A-Z0-9 .'\-]*[A-Z0-9.])((?:\s*\([^)]*\))*):\s")
# a prop: a CAPITALISED phrase after an article or possessive ("holds the BRASS KEY")
_CAPS = re.compile(r"\b(?:[Tt]he|[Aa]n?|[Hh]is|[Hh]er|[Tt]heir|[Ii]ts|[Mm]y|[Yy]our)\s+"
                   r"([A-Z][A-Z'\-]{2,}(?:\s+[A-Z][A-Z'\-]{2,})*)\b")
_PREFIX = re.compile(r"^(?:INT\./EXT|EXT\./INT|INT/EXT|I/E|INT|EXT|EST)[.\s]+", re.IGNORECASE)
_TIME = re.compile(r"\s+-\s+(?:DAY|NIGHT|MORNING|EVENING|LATER|CONTINUOUS|DUSK|DAWN)\b.*$",
                   re.IGNORECASE)


def _words(text: str, n: int = 25) -> str:
    return " ".join(text.split()[:n])


def _data_block(text: str) -> str | None:
    m = re.search(r"<<<SCRIPT\n(.*?)\nSCRIPT>>>", text, re.DOTALL)
    return m.group(1) if m else None


def pass1_answer(script: str) -> dict:
    """Entities found in a chunk the way a (very literal) model would."""
    entities: dict[tuple[str, str], dict] = {}
    speakers: set[str] = set()

    def add(name: str, kind: str, scene: int, text: str, context: str) -> None:
        ent = entities.setdefault((kind, name), {"name": name, "type": kind, "aliases": [],
                                                 "mentions": []})
        if not any(m["sceneNumber"] == scene for m in ent["mentions"]):
            ent["mentions"].append({"sceneNumber": scene, "text": text, "context": _words(context)})

    scene = 0
    lines = script.splitlines()
    for line in lines:  # speakers first, so that CAPS speaker names in action are not props
        m = _CUE.match(line)
        if m:
            speakers.add(m.group(1).strip())
    for line in lines:
        s = _SCENE.match(line)
        if s:
            scene = int(s.group(1))
            place = _TIME.sub("", _PREFIX.sub("", s.group(2))).strip()
            if place:
                add(place, "location", scene, place, s.group(2))
            continue
        c = _CUE.match(line)
        if c:
            name = (c.group(1) + c.group(2)).strip()
            add(name, "character", scene, c.group(1).strip(), line[c.end():])
            continue
        for word in _CAPS.findall(line):
            if word not in speakers and not any(word in s or s in word for s in speakers):
                add(word.title(), "prop", scene, word, line)
    return {"entities": list(entities.values())}


def pass2_answer(user: str) -> dict:
    name = re.search(r"^Asset: (.*)$", user, re.MULTILINE)
    kind = re.search(r"^Type: (.*)$", user, re.MULTILINE)
    scenes = re.search(r"\((\d+) in all\)", user)
    name_s = name.group(1) if name else "it"
    n = int(scenes.group(1)) if scenes else 1
    return {
        "description": (f"{name_s} is seen in clear, even light. The {kind.group(1) if kind else 'asset'} "
                        f"has a distinct silhouette. Colours are muted greys and deep blues. "
                        f"Textures are worn and lived-in."),
        "confidenceScore": 0.8,
        "isPriority": n >= 3,
        "hasVisualConflicts": False,
        "conflictDetails": "",
    }


@dataclass
class FakeLLM:
    delay: float = 0.0  # seconds before every answer
    garbage: bool | str = False  # True: every answer is garbage; a string: requests naming it
    invalid_json_once: bool = False  # the first chat request gets broken JSON
    schema_error_once: bool = False  # the first chat request gets JSON of the wrong shape
    rate_limit_first: int = 0  # the first N chat requests get 429
    retry_after: str | None = None  # Retry-After header sent with those 429s
    server_error_first: int = 0  # the first N chat requests get 500
    close_first: int = 0  # the first N chat requests get a dropped connection
    hang: float = 0.0  # seconds to sleep before answering (longer than the client timeout)
    auth_error: bool = False  # 401 whose message echoes the Authorization header
    not_found: bool = False  # 404 model not found
    fenced: bool = False  # every answer as "Here you go:\n```json\n{...}\n```\nprose"
    # extra pass-1 entities in every chunk's answer: (type, name) or (type, name, aliases)
    invent: tuple = ()
    # per-chunk names for a speaker: {"OLD MAN": [("THE OLD MAN", []), ("old man's", []),
    # ("Mr. Fisher", ["Old Man"])]}; the chunk starting at scene n uses entry (n - 1) % len
    variants: dict = field(default_factory=dict)
    server: LoopbackServer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = 0

    # -- server --
    def __enter__(self) -> FakeLLM:
        self.server = LoopbackServer(self)
        # socketserver listens with a backlog of 5: a burst of concurrent connections beyond
        # that waits ~1 s for a SYN retransmit. Widen it (Linux updates the live backlog).
        self.server.httpd.socket.listen(512)
        # serve_forever polls for shutdown every 0.5 s; 0.02 s keeps each test's teardown short.
        self.server.thread = threading.Thread(target=self.server.httpd.serve_forever,
                                              kwargs={"poll_interval": 0.02}, daemon=True)
        default_handle_error = self.server.httpd.handle_error

        def handle_error(request, client_address):  # a client that timed out and left: expected
            if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
                default_handle_error(request, client_address)

        self.server.httpd.handle_error = handle_error  # type: ignore[method-assign]
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        assert self.server is not None
        self.server.__exit__(*exc)

    @property
    def api_base(self) -> str:
        assert self.server is not None
        return self.server.url + "/v1"

    @property
    def requests(self) -> list[Request]:
        assert self.server is not None
        return [r for r in self.server.requests if r.path.endswith("/chat/completions")]

    # -- answering --
    def __call__(self, req: Request) -> Reply:
        if not req.path.endswith("/chat/completions"):
            return Reply(status=404, body={"error": {"message": f"no route {req.path}"}})
        with self._lock:
            self._seen += 1
            n = self._seen
        body = req.json
        messages = body.get("messages") or []
        everything = "\n".join(str(m.get("content") or "") for m in messages)
        delay = self.delay + self.hang
        if self.auth_error:
            auth = req.headers.get("authorization") or req.headers.get("Authorization") or ""
            return Reply(status=401, delay=delay, body={"error": {
                "message": f"Incorrect API key provided: {auth.split()[-1] if auth else ''}",
                "type": "invalid_request_error", "code": "invalid_api_key"}})
        if self.not_found:
            return Reply(status=404, delay=delay, body={"error": {
                "message": f"The model `{body.get('model')}` does not exist", "type": "invalid_request_error",
                "code": "model_not_found"}})
        if n <= self.close_first:
            return Reply(close=True, delay=delay)
        if n <= self.rate_limit_first:
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return Reply(status=429, delay=delay, headers=headers,
                         body={"error": {"message": "Rate limit reached", "type": "rate_limit"}})
        if n <= self.server_error_first:
            return Reply(status=500, delay=delay, body={"error": {"message": "upstream failure"}})
        if self.garbage is True or (isinstance(self.garbage, str) and self.garbage in everything):
            content = "I am sorry, I cannot help with that. {{not json"
        elif n == 1 and self.invalid_json_once:
            content = '{"entities": [ {"name": "broken'
        elif n == 1 and self.schema_error_once:
            content = json.dumps({"things": []})
        else:
            content = json.dumps(self.answer(messages), indent=1 if self.fenced else None)
            if self.fenced:
                content = (f"Sure! Here is the JSON you asked for:\n\n```json\n{content}\n```\n\n"
                           "Let me know if you want {more} detail.")
        prompt_tokens = (len(everything) + 3) // 4 + 4 * len(messages)
        return Reply(delay=delay, body=chat_reply(content, prompt_tokens, (len(content) + 3) // 4))

    def answer(self, messages: list[dict]) -> dict:
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        first = users[0] if users else ""
        if first.startswith("Asset:") and "Current description:" in first:
            name = re.search(r"^Asset: (.*)$", first, re.MULTILINE)
            return {"description": pass2_answer(first)["description"],
                    "reasoning": f"Followed most scenes for {name.group(1) if name else 'it'}."}
        if first.startswith("Asset:"):
            return pass2_answer(first)
        script = _data_block(first)
        if script is not None:
            return self._pass1(script)
        return {"error": "unrecognised request"}

    def _pass1(self, script: str) -> dict:
        answer = pass1_answer(script)
        first = re.search(r"^\[Scene (\d+)\]", script, re.MULTILINE)
        scene = int(first.group(1)) if first else 1
        for ent in answer["entities"]:
            key = re.sub(r"\s*\(.*$", "", ent["name"]).strip()
            forms = self.variants.get(key)
            if forms:
                ent["name"], aliases = forms[(scene - 1) % len(forms)]
                ent["aliases"] = list(aliases)
        for item in self.invent:
            kind, name, aliases = (*item, [])[:3]
            answer["entities"].append({"name": name, "type": kind, "aliases": list(aliases),
                                       "mentions": [{"sceneNumber": scene, "text": name,
                                                     "context": f"{name} looms."}]})
        return answer


# ---- screenplays built directly (no parser needed) -------------------------------------------


def build_screenplay(scenes: list[tuple[str, list[tuple[str, str]]]]) -> Screenplay:
    """A Screenplay from [(heading, [(element_type, text), ...]), ...].

    A `character` element's text is the cue ("OLD MAN (V.O.)"); name and extensions are split.
    """
    elements: list[Element] = []
    out: list[Scene] = []
    line = 1
    for number, (heading, body) in enumerate(scenes, start=1):
        start = len(elements)
        elements.append(Element(type="scene_heading", text=heading, scene=number, line=line))
        line += 2
        for kind, text in body:
            el = Element(type=kind, text=text, scene=number, line=line)  # type: ignore[arg-type]
            if kind == "character":
                el.name = text.split("(")[0].strip()
                el.extensions = re.findall(r"\(([^)]*)\)", text) or None
            elements.append(el)
            line += text.count("\n") + 2
        m = re.match(r"^(INT\./EXT|INT|EXT|EST)[.\s]+(.*?)(?:\s+-\s+(.*))?$", heading)
        out.append(Scene(number=number, heading=heading, int_ext=m.group(1) if m else None,
                         location=m.group(2) if m else heading,
                         time_of_day=m.group(3) if m else None, line=elements[start].line,
                         element_range=(start, len(elements))))
    return Screenplay(scenes=out, elements=elements)


PEOPLE = ["MARA", "THE OLD MAN", "DETECTIVE ROOK", "LENA", "KID"]
PLACES = ["INT. HARBOUR OFFICE", "EXT. DOCKS", "INT. MARA'S APARTMENT", "EXT. LIGHTHOUSE"]
PROPS = ["LANTERN", "BRASS KEY", "RED COAT"]


def sample_screenplay(n_scenes: int = 11, words_per_scene: int = 60) -> Screenplay:
    """A deterministic synthetic script: recurring people, places and props across scenes."""
    filler = ("rain streaks the glass while gulls wheel over grey water and the tide "
              "pulls at the pilings under a low sky").split()
    scenes = []
    for i in range(n_scenes):
        a, b = PEOPLE[i % len(PEOPLE)], PEOPLE[(i + 2) % len(PEOPLE)]
        prop = PROPS[i % len(PROPS)]
        text = " ".join(filler[(i + k) % len(filler)] for k in range(words_per_scene))
        body = [
            ("action", f"{a.title()} holds the {prop} up to the light. {text.capitalize()}."),
            ("character", a if i % 4 else f"{a} (V.O.)"),
            ("dialogue", f"We need the {prop.lower()} before the tide turns."),
            ("character", b),
            ("parenthetical", "(quietly)"),
            ("dialogue", "Then we go tonight."),
        ]
        time = "NIGHT" if i % 2 else "DAY"
        scenes.append((f"{PLACES[i % len(PLACES)]} - {time}", body))
    return build_screenplay(scenes)


def main(argv: list[str] | None = None) -> int:
    """Serve the fake LLM until interrupted, to try a command or a benchmark by hand:
    python -m tests.fake_llm [--delay 0.3] [--fenced] (prints the api_base to pass)."""
    import argparse
    import time

    ap = argparse.ArgumentParser(description="An OpenAI-compatible fake LLM on 127.0.0.1.")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    ap.add_argument("--fenced", action="store_true", help="answer inside ```json fences")
    a = ap.parse_args(argv)
    with FakeLLM(delay=a.delay, fenced=a.fenced) as llm:
        print(llm.api_base, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
