"""stage5: turn a screenplay into a locked, consistent set of visual reference assets.

The CLI (`stage5 ...`) is a thin layer over this importable core. The names below load on first
use, so importing the package (and starting the CLI) stays fast:

    import stage5cli as s5
    project, _ = s5.init_project("my-film")
    s5.lock_style(project, "film-noir")
    outcome = s5.run_extraction(project, Path("script.fountain"), s5.LLMOptions())
    for asset in s5.list_assets(project): ...
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    # project folder, styles, branches
    "init_project": "project", "open_project": "project", "lock_style": "project",
    "create_branch": "project", "switch_branch": "project", "status": "readiness",
    "StyleCapsule": "styles", "builtin_styles": "styles", "compose_prompt": "styles",
    # scripts
    "load_screenplay": ("screenplay", "load"), "Screenplay": "screenplay",
    # extraction and assets
    "LLMOptions": "extract.base", "ExtractOptions": ("extract.base", "LLMOptions"),  # old name
    "run_extraction": ("extract.service", "run"), "resolve_extractor": ("extract.registry", "resolve"),
    "list_assets": ("readiness", "list_views"), "resolve_asset": ("store", "resolve"),
    "AssetView": "store", "ExtractedAsset": "models",
    # images, locking, export, library, batch
    "get_backend": "images", "lock_all": "locking", "set_locked": "locking",
    "compose": "prompting", "ComposedPrompt": "prompting",
    "assess": "readiness", "Readiness": "readiness", "AssetReadiness": "readiness",
    "write_export": "export", "build_document": "export", "promote": "library",
    "run_batch": "batch", "BatchOptions": "batch",
    # errors
    "Stage5Error": "errors", "UsageError": "errors", "BlockedError": "errors",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'stage5cli' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value
