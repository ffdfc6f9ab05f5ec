"""Naming assets: finding one by id, name or alias, who already answers to a name, and the
checks every name, alias, type and description passes before it is stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from stage5cli.errors import BlockedError, NotFoundError, UsageError
from stage5cli.project import Project
from stage5cli.records import ASSET_TYPES

from .read import meta_of, rows, type_error

MAX_NAME = 120
MAX_DESCRIPTION = 4000


_ID_REF = re.compile(r"(?:#|id:)?\s*([0-9]{1,18})", re.IGNORECASE)


def is_id_like(name: str) -> bool:
    """Would `name` read as an asset id (12, #12, id:12)? Such names are refused."""
    return _ID_REF.fullmatch(" ".join(name.split())) is not None


def loose(name: str) -> str:
    """A name as people type it: case-, accent- (NFKD, combining marks dropped) and
    apostrophe-insensitive (curly and straight quotes alike). `loose("INÉS") == loose("ines")`."""
    import unicodedata

    from stage5cli.extract.names import fold

    text = unicodedata.normalize("NFKD", fold(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def name_key(name: str) -> str:
    """The normalised form two spellings of one name share (extract.merge.norm_name), accents
    folded as in `loose`."""
    from stage5cli.extract.names import norm_name  # (merge re-exports it; names has no pydantic)

    return norm_name(loose(name))


def resolve(project: Project, ref: str) -> dict[str, Any]:
    """An asset by id or by name/alias, case-insensitive; exit 2 with suggestions if unknown."""
    ref = " ".join(ref.split())
    if not ref:
        raise UsageError("an asset reference cannot be empty (give an id, a name or an alias)")
    if not ref.isprintable():
        raise UsageError(f"{ref!r} is not an asset reference: it holds control characters")
    all_rows = rows(project)
    m = _ID_REF.fullmatch(ref)
    if m:  # an id: 12, #12 or id:12 (names are never a bare number, see check_name)
        wanted = int(m.group(1))
        for r in all_rows:
            if r["id"] == wanted:
                return r
        raise NotFoundError(f"no asset with id {wanted} on this branch "
                            "(stage5 list shows the ids)")
    if ref[:1] == "#" or ref[:3].lower() == "id:":
        raise UsageError(f"{ref!r} is not an asset id: write #N or id:N with N a number "
                         "(0-9), or the asset's name")
    low = loose(ref)
    exact = [r for r in all_rows if loose(r["name"]) == low]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise UsageError(_ambiguous(ref, exact))
    key = name_key(ref)
    by_alias = [
        r for r in all_rows
        if low in (loose(a) for a in meta_of(r).get("aliases", []))
        or (key and (key == name_key(r["name"])
                     or key in {name_key(a) for a in meta_of(r).get("aliases", [])}))
    ]
    if len(by_alias) == 1:
        return by_alias[0]
    if len(by_alias) > 1:
        raise UsageError(_ambiguous(ref, by_alias))
    names = [r["name"] for r in all_rows]
    for r in all_rows:
        names.extend(meta_of(r).get("aliases", []))
    from stage5cli.styles import suggest

    hint = suggest(ref, names) or ("; the project has no assets yet" if not all_rows else "")
    raise NotFoundError(f"no asset named {ref!r}{hint}")


def _ambiguous(ref: str, found: list[dict]) -> str:
    listed = ", ".join(f"{r['name']} (id {r['id']}, {r['asset_type']})" for r in found[:8])
    return f"{ref!r} is ambiguous: {listed}; use the id"


def owner(project: Project, name: str, asset_type: str | None,
          exclude: Iterable[int] = ()) -> dict[str, Any] | None:
    """Another asset on this branch that already answers to `name` (name or alias)."""
    low = name.lower()
    key = name_key(name)
    skip = set(exclude)
    for r in rows(project):
        if r["id"] in skip:
            continue
        aliases = meta_of(r).get("aliases", [])
        if low == r["name"].lower() or low in (a.lower() for a in aliases):
            return r
        if asset_type == r["asset_type"] and key and key in {
                name_key(x) for x in [r["name"], *aliases]}:
            return r
    return None


def quoted(name: str) -> str:
    """An asset name as it is typed in a suggested command line."""
    import shlex

    return shlex.quote(name)


# ---- checks --------------------------------------------------------------------------------


def require_unlocked(row: dict[str, Any], action: str) -> None:
    if row["locked"]:
        raise BlockedError(
            f"asset {row['name']!r} is locked: run stage5 unlock {row['name']!r} to {action} it"
        )


def _checked(text: str, what: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise UsageError(f"{what} cannot be empty")
    if len(text) > MAX_NAME:
        raise UsageError(f"{what} is at most {MAX_NAME} characters")
    return text


def check_name(name: str) -> str:
    name = _checked(name, "an asset name")
    if is_id_like(name):
        raise UsageError(f"an asset name cannot be a bare number ({name!r} reads as an asset "
                         "id): add a word, e.g. \"Locker " + name.lstrip("#") + "\"")
    return name


def check_alias(alias: str) -> str:
    alias = _checked(alias, "an alias")
    if is_id_like(alias):
        raise UsageError(f"an alias cannot be a bare number ({alias!r} reads as an asset id)")
    return alias


def check_description(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_DESCRIPTION:
        raise UsageError(f"a description is at most {MAX_DESCRIPTION} characters (got {len(text)})")
    return text


def check_type(asset_type: str) -> str:
    t = asset_type.strip().lower()
    if t not in ASSET_TYPES:
        raise type_error(asset_type)
    return t
