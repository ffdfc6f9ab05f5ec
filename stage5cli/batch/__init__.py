"""`stage5 batch`: many scripts, one project each, in parallel worker processes, resumable."""

from .runner import *  # noqa: F403
from .runner import (  # noqa: F401 (used by the tests)
    _BACKENDS,
    INTERRUPTED,
    MARKER,
    SCRIPT_EXTENSIONS,
    UP_TO_DATE,
    blank_result,
    default_jobs,
    read_marker,
)
