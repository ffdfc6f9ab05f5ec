"""The asset store: every read and write of a project's assets, their mentions and metadata.

Use it as `from . import store` (`store.resolve(project, ref)`), or import a helper by name
(`from .store import meta_of`). Writes run inside the caller's `atomic()`, except
save_extraction, which is one transaction of its own.

  read.py       rows, metadata, mentions, image references; the views commands print
  names.py      finding an asset by id, name or alias; the checks on names and descriptions
  write.py      insert, update, delete, the moves a merge makes; snapshots and restore (undo)
  extracted.py  saving an extraction: re-extraction updates in place and keeps user edits
"""

from .extracted import (
    CONTEXT_QUOTES,
    MAX_ALIASES,
    MAX_ASSETS_PER_KIND,
    MAX_MENTIONS,
    MovedOn,
    check_started_on,
    save_extraction,
    started_on,
)
from .names import (
    MAX_DESCRIPTION,
    MAX_NAME,
    check_alias,
    check_description,
    check_name,
    check_type,
    name_key,
    owner,
    quoted,
    require_unlocked,
    resolve,
)
from .read import (
    AssetDetail,
    AssetView,
    JobView,
    MentionView,
    all_image_refs,
    as_extracted,
    asset_view,
    by_ids,
    image_refs,
    jobs_of,
    list_views,
    mentions_of,
    meta_of,
    row_of,
    rows,
    scenes_by_asset,
    type_error,
    view,
)
from .write import (
    add_mentions,
    curation_snapshot,
    delete_assets,
    insert_asset,
    move_jobs,
    move_mentions,
    own_fields,
    replace_mentions,
    restore,
    restore_curation,
    snapshot,
    update_asset,
)

__all__ = [
    "CONTEXT_QUOTES", "MAX_ALIASES", "MAX_ASSETS_PER_KIND", "MAX_DESCRIPTION", "MAX_MENTIONS", "MAX_NAME", "AssetDetail", "AssetView",
    "JobView", "MentionView", "MovedOn", "check_started_on", "started_on",
    "add_mentions", "all_image_refs", "as_extracted", "asset_view", "by_ids", "check_alias",
    "check_description", "check_name", "check_type", "delete_assets", "image_refs",
    "insert_asset", "jobs_of", "list_views", "mentions_of", "meta_of", "move_jobs",
    "move_mentions", "name_key", "own_fields", "owner", "quoted", "replace_mentions",
    "require_unlocked", "resolve", "restore", "restore_curation", "curation_snapshot", "row_of", "rows", "save_extraction",
    "scenes_by_asset", "snapshot", "type_error", "update_asset", "view",
]
