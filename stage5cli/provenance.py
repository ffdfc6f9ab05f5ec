"""What made an image key: the two hashes an asset stores with it (migration m002).

- `recipe_sha256`: everything that shaped the pixels (the prompt sent, negative prompt, style
  sha256, backend, model, size, seed, steps);
- `source_sha256`: the asset inputs the prompt was composed from (name, type, description) and
  the style sha256. When these change, the image is *stale*.

The recipes are frozen: m002_image_provenance computes the same hashes for existing keys.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _h(values: list[Any]) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def recipe_sha256(*, prompt: str, negative_prompt: str, style_sha256: str, backend: str,
                  model: str | None, width: int, height: int, seed: int | None,
                  steps: int | None) -> str:
    return _h([prompt, negative_prompt or "", style_sha256, backend, model, width, height, seed,
               steps])


def source_sha256(*, name: str, asset_type: str, description: str, style_sha256: str) -> str:
    return _h([name, asset_type, description or "", style_sha256])
