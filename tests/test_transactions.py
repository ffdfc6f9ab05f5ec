"""Every multi-row change is one transaction: a failure injected at the last step (the history
event, written after every row) rolls the whole change back."""

from __future__ import annotations

import pytest

from stage5cli.project import Project
from tests.conftest import table_dump

SCRIPT = """INT. LIGHTHOUSE - NIGHT

MARA, 60s, in a blue coat, winds the lamp.

MARA
Not tonight.

EXT. HARBOUR - DAY

ELIAS, 30s, runs along the pier with a LETTER.

ELIAS
Mrs. Quinn!
"""


def _library_dump():
    import os
    from pathlib import Path

    db = Path(os.environ["STAGE5_HOME"]) / "library.db"
    # (opening the library may create it empty; what must not change is what it holds)
    return table_dump(db)["global_assets"] if db.exists() else []


@pytest.fixture
def ready(styled, cli, tmp_path):
    """A project with extracted assets (so re-extraction updates rows) and images."""
    script = tmp_path / "s.fountain"
    script.write_text(SCRIPT)
    assert cli("extract", script, "-p", styled).exit_code == 0
    assert cli("generate", "--all", "-p", styled).exit_code == 0
    assert cli("lock", "MARA", "ELIAS", "-p", styled).exit_code == 0
    return styled, script


@pytest.mark.parametrize("args", [
    ["merge", "LIGHTHOUSE", "HARBOUR", "--yes"],
    ["extract", "{script}"],
    ["promote", "MARA", "ELIAS"],
    ["lock-all", "--allow-placeholder", "--yes"],
    ["branch", "create", "alt", "--style", "anime"],
    ["remove", "HARBOUR", "--yes"],
    ["generate", "--all"],
    ["add", "NEW THING", "--type", "prop"],
], ids=lambda a: a[0])
def test_failure_at_the_last_step_rolls_back(args, ready, cli, monkeypatch):
    root, script = ready
    before, lib_before = table_dump(root / "stage5.db"), _library_dump()
    images_before = sorted(p.name for p in (root / "images").glob("*.png"))
    real = Project.record_event

    def boom(self, command, payload):
        real(self, command, payload)
        raise RuntimeError("injected failure")

    with monkeypatch.context() as m:
        m.setattr(Project, "record_event", boom)
        r = cli(*[a.replace("{script}", str(script)) for a in args], "-p", root)
    assert r.exit_code == 1, r.output
    assert "injected failure" in r.stderr
    assert table_dump(root / "stage5.db") == before
    assert _library_dump() == lib_before
    if args[0] != "generate":  # generate's files are new names; the old ones stay in place
        assert sorted(p.name for p in (root / "images").glob("*.png")) == images_before


# ---- the reads that decide a lock or an unlock happen inside its transaction --------------


def _in_transaction_when_called(monkeypatch, owner, name: str) -> list[bool]:
    """Wrap `owner.name` (its first argument a Project) to record, per call, whether the
    project's connection was inside a transaction; returns the record."""
    real = getattr(owner, name)
    seen: list[bool] = []

    def watched(project, *a, **kw):
        seen.append(project.db.conn.in_transaction)
        return real(project, *a, **kw)

    monkeypatch.setattr(owner, name, watched)
    return seen


def test_lock_all_generated_chooses_its_targets_inside_the_transaction(ready, cli, monkeypatch):
    """`lock-all --generated` reads which assets have a current image inside the BEGIN
    IMMEDIATE that locks them: an image replaced or an asset added by another process between
    the read and the write can then never be locked unseen (issue 14)."""
    import stage5cli.readiness as readiness

    root, _ = ready
    seen = _in_transaction_when_called(monkeypatch, readiness, "assess")
    r = cli("lock-all", "--generated", "--allow-placeholder", "-p", root)
    assert r.exit_code == 0, r.output
    assert "locked" in r.stdout and seen == [True]


def test_unlock_reads_the_stage_inside_the_transaction(ready, cli, monkeypatch):
    """`unlock` refuses on a locked stage; the stage it checks is read inside the transaction
    that unlocks, so a `lock-all` finishing in another process in between cannot be missed."""
    root, _ = ready
    seen = _in_transaction_when_called(monkeypatch, Project, "stage")
    r = cli("unlock", "MARA", "-p", root)
    assert r.exit_code == 0, r.output
    assert seen and all(seen), seen
