"""The one place stage5 imports litellm.

litellm fetches its model price list from the internet at import time unless
`LITELLM_LOCAL_MODEL_COST_MAP` is set; stage5 never fetches anything but the user's own
endpoint, so the variable is set here, before the first import, on every path (extraction,
descriptions, conflicts, image generation, doctor, batch). Every `import litellm` in stage5
goes through `import_litellm()` (tests/test_no_network.py checks that nothing else does).
"""

from __future__ import annotations

import os
from typing import Any


def import_litellm() -> Any:
    """litellm, with its bundled price map (no fetch) and without its debug banner."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.suppress_debug_info = True
    return litellm
