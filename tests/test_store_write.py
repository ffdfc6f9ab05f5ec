"""store.write.insert_assets: many assets in two statements, ids as SQLite would give them."""

from __future__ import annotations

from stage5cli.db import atomic
from stage5cli.project import open_project
from stage5cli.store.write import delete_assets, insert_asset, insert_assets


def test_insert_assets_gives_each_asset_its_own_mentions_and_fresh_ids(styled):
    project = open_project(styled)
    with atomic(project.db):
        first = insert_asset(project, name="Mara", asset_type="character",
                             mentions=[{"scene_number": 1, "text": "MARA", "context": "c"}])
        gone = insert_asset(project, name="Tom", asset_type="character")
        delete_assets(project, [gone])  # the largest id is free again, as SQLite would reuse it
        ids = insert_assets(project, [
            {"name": "Kitchen", "asset_type": "location",
             "mentions": [{"scene_number": 1, "text": "KITCHEN"},
                          {"scene_number": 3, "text": "KITCHEN", "context": "x"}]},
            {"name": "Key", "asset_type": "prop", "description": "A brass key.",
             "metadata": {"aliases": ["BRASS KEY"], "user_fields": []}},
            {"name": "Truck", "asset_type": "prop", "origin": "manual",
             "mentions": [{"scene_number": 2, "text": "truck", "context": ""}]},
        ])
    assert ids == [first + 1, first + 2, first + 3]
    rows = {r["id"]: r for r in project.db.query("SELECT * FROM project_assets")}
    assert [rows[i]["name"] for i in ids] == ["Kitchen", "Key", "Truck"]
    assert rows[ids[1]]["description"] == "A brass key."
    assert '"BRASS KEY"' in rows[ids[1]]["metadata"]
    assert rows[ids[2]]["origin"] == "manual" and rows[ids[0]]["origin"] == "extracted"
    assert len({rows[i]["created_at"] for i in ids}) == 1
    mentions = sorted((m["asset_id"], m["scene_number"], m["text"], m["context"])
                      for m in project.db.query("SELECT * FROM asset_mentions"))
    assert mentions == [(first, 1, "MARA", "c"), (ids[0], 1, "KITCHEN", ""),
                        (ids[0], 3, "KITCHEN", "x"), (ids[2], 2, "truck", "")]


def test_insert_assets_of_nothing_writes_nothing(styled):
    project = open_project(styled)
    with atomic(project.db):
        assert insert_assets(project, []) == []
    assert project.db.execute("SELECT COUNT(*) FROM project_assets").fetchone()[0] == 0
