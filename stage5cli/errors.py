"""Domain errors. The core raises them; the CLI turns each into one line on stderr."""

from __future__ import annotations

# Exit codes of the CLI contract (DESIGN.md section 4).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3


class Stage5Error(Exception):
    """An error the user can act on. `exit_code` is what the CLI exits with."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split("\n")).strip()


class UsageError(Stage5Error):
    """Bad usage or bad input (exit 2)."""

    exit_code = EXIT_USAGE


class BlockedError(Stage5Error):
    """The gatekeeper blocks: no locked style, locked asset or stage (exit 3)."""

    exit_code = EXIT_BLOCKED


class NotFoundError(UsageError):
    """A named thing (asset, style, branch, file) does not exist (exit 2)."""


def describe_unexpected(e: BaseException) -> str:
    """One line for an error nobody anticipated (the traceback shows with STAGE5_DEBUG=1)."""
    import sqlite3

    if isinstance(e, sqlite3.Error):
        return describe_error(e)
    if isinstance(e, StopIteration):  # a next() over a row that must exist (edited by hand)
        return "the project database lacks a row it needs (edited by hand?); run stage5 doctor"
    if isinstance(e, OSError):
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return f"{e.strerror or e}{where}"
    return f"unexpected {e.__class__.__name__}: {e} (set STAGE5_DEBUG=1 for details)"


def describe_error(e: BaseException) -> str:
    """What a SQLite error means for the user, in a few words (its text in brackets)."""
    import sqlite3

    text = str(e)
    low = text.lower()
    code = getattr(e, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "database or disk is full" in low:
        return f"disk full ({text})"
    if code is not None and code & 0xFF == sqlite3.SQLITE_READONLY or "readonly" in low \
            or "read-only" in low:
        return f"the project database is read-only ({text}); check the permissions of the " \
               "project folder and stage5.db"
    if "locked" in low or "busy" in low:
        return "the project database is busy (another stage5 is writing); try again"
    if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR or "disk i/o error" in low:
        return f"the disk failed while writing ({text}): is it full, or over a size limit?"
    if code is not None and code & 0xFF == sqlite3.SQLITE_CANTOPEN:
        return f"cannot open the project database ({text})"
    return f"the project database is damaged or unreadable ({text}); run stage5 doctor"
