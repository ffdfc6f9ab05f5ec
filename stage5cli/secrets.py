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
