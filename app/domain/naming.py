"""Channel names from the configured format, within Slack's naming rules."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

MAX_CHANNEL_NAME = 80
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")


def slugify(text: str, limit: int = 40) -> str:
    """Lowercase ASCII words joined by '-', accents folded, everything else dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_ALLOWED.sub("-", folded.lower()).strip("-_")
    slug = re.sub(r"-{2,}", "-", slug)
    return slug[:limit].rstrip("-_")


def channel_name(fmt: str, incident_id: int, title: str, day: date, attempt: int = 1) -> str:
    """The name for `incident_id`; `attempt` > 1 adds '-2', '-3'… after a `name_taken`."""
    raw = fmt.format(id=incident_id, slug=slugify(title), date=day.strftime("%Y%m%d"))
    name = _NOT_ALLOWED.sub("-", raw.lower()).strip("-_")
    name = re.sub(r"-{2,}", "-", name) or f"incident-{incident_id}"
    suffix = f"-{attempt}" if attempt > 1 else ""
    return name[: MAX_CHANNEL_NAME - len(suffix)].rstrip("-_") + suffix
