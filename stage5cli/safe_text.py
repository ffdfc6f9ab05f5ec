"""Text is text: user data (asset names, script text, provider messages, paths) made safe to
print through Rich. `esc()` escapes Rich markup (`[red]X`, `[/]x`, `stage5[pdf]` print as
written) and shows control characters (`ESC[2J`) as `\\x1b` instead of sending them to the
terminal. The CLI's output helpers (stage5cli.cli.app) use it everywhere."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
            if c not in (0x09, 0x0A)}


def plain(text: Any) -> str:
    """`text` as a string with its control characters (but tab and newline) made visible."""
    return str(text if text is not None else "").translate(_CONTROL)


# rich.markup.escape's own rule (Rich 13-15), here so that escaping does not import Rich:
# tests/test_startup.py checks that both agree.
_TAG_LIKE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(markup: str) -> str:
    """`markup` with every tag-like `[...]` escaped (rich.markup.escape)."""
    markup = _TAG_LIKE.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", markup)
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup


def esc(text: Any) -> str:
    """User data ready to sit inside Rich markup: printed literally, never interpreted."""
    return escape(plain(text))


