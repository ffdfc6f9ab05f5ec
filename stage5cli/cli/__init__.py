"""The `stage5` command line: argument parsing, Rich output, exit codes. No business logic.

`app.py` holds the Typer app, the shared options and the error handling; `commands/` holds the
commands, one module per help panel. Importing this package registers every command, in
workflow order: the order of the modules below is the order of the panels in `stage5 --help`.
"""

from __future__ import annotations

from stage5cli.cli.app import app

# Workflow order, not alphabetical: it is the order of the help panels.
# isort: off
from stage5cli.cli.commands import project  # noqa: F401  Project: init, status, style, branch, demo, doctor
from stage5cli.cli.commands import extract  # noqa: F401  Script and assets: parse, extract, review
from stage5cli.cli.commands import breakdown  # noqa: F401  Script and assets: breakdown
from stage5cli.cli.commands import curation  # noqa: F401  Script and assets, History: show ... undo
from stage5cli.cli.commands import images  # noqa: F401  Images: generate, jobs
from stage5cli.cli.commands import lock  # noqa: F401  Lock and export: lock, unlock, lock-all, export
from stage5cli.cli.commands import library  # noqa: F401  Library: promote, library ...
from stage5cli.cli.commands import batch  # noqa: F401  Automation: batch
from stage5cli.cli.commands import serve  # noqa: F401  Review: serve (the review room)
# isort: on

__all__ = ["app"]
