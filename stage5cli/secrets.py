"""Keeping credentials out of everything stage5 writes or prints (one scrubber for all)."""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
_SECRET_SHAPES = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "sk-***"),
    (re.compile(r"\b(?:AIza|hf_|gsk_|xai-|r8_|pplx-)[A-Za-z0-9_\-]{8,}"), "***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ***"),
    (re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|key|token|secret|password|authorization)"
                r"[\"']?\s*[=:]\s*['\"]?)[^\s'\"&,;}]{4,}"), r"\1***"),
    (re.compile(r"(?i)([?&](?:key|api_key|token|sig)=)[^&\s]+"), r"\1***"),
    (re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1***@"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b"), "***"),
]


def scrub(text: str | None) -> str:
    """`text` without anything key-like: the values of *KEY*/*TOKEN*/*SECRET*/*PASSWORD*
    environment variables, and the usual key shapes (sk-..., bearer ..., key=...)."""
    if not text:
        return text or ""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    for pattern, repl in _SECRET_SHAPES:
        text = pattern.sub(repl, text)
    return text


# ---- which key is sent where ---------------------------------------------------------------

KEY_ENV = "STAGE5_API_KEY"  # the key for a server given with --api-base
NO_KEY = "stage5-no-key"  # sent to a server given with --api-base when no key is named for it
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def api_key_for(api_base: str | None, api_key_env: str | None) -> str | None:
    """The API key to send, or None to let the provider's library read its own variable.

    A key goes only where the user said: `--api-key-env VAR` sends $VAR (to the provider or to
    --api-base). A server given with --api-base gets $STAGE5_API_KEY, else no key at all
    (NO_KEY): never the provider's default variable (OPENAI_API_KEY, ...), which would hand
    that key to an arbitrary host. Without either, None: the provider's own variable, sent to
    the provider's own host.
    """
    from .errors import UsageError

    if api_key_env is not None:
        name = api_key_env.strip()
        if not _VAR.fullmatch(name):
            raise UsageError(f"--api-key-env takes the name of an environment variable "
                             f"(got {api_key_env!r})")
        value = os.environ.get(name, "")
        if not value.strip():
            raise UsageError(f"--api-key-env {name}: the environment variable {name} is not set")
        return value.strip()
    if api_base:
        return os.environ.get(KEY_ENV, "").strip() or NO_KEY
    return None
