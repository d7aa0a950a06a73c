"""Severity numbers as people type them ("sev2", "SEV-2", "2")."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"^(?:sev|s|p)?[-_ ]?([1-4])$", re.IGNORECASE)


def parse_severity(text: str) -> int:
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"Unknown severity {text.strip()!r}; use sev1, sev2, sev3 or sev4.")
    return int(match.group(1))


def looks_like_severity(text: str) -> bool:
    return bool(_PATTERN.match(text.strip()))
