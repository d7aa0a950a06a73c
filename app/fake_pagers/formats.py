"""The shapes of identifiers and timestamps the two providers use.

A bot that stores or compares provider ids should meet ids shaped like the real ones (PagerDuty's
upper-case `P…`/`Q…` ids, 26-character event ids, Opsgenie's UUIDs and numeric tiny ids), and
timestamps in the providers' ISO 8601 forms. A seeded generator makes them reproducible.
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from datetime import UTC, datetime

_UPPER_ALNUM = string.ascii_uppercase + string.digits
# Crockford's base32, as in the 26-character ids PagerDuty gives webhook events.
_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdMaker:
    """Makes provider-shaped ids from one generator (seeded for reproducible runs)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def pagerduty(self, prefix: str = "P", length: int = 7) -> str:
        """A PagerDuty object id such as `PF9KMXH` (7 characters) or `Q2STH1QX0AJT5J` (14)."""
        return prefix + "".join(self._rng.choice(_UPPER_ALNUM) for _ in range(length - 1))

    def event_id(self) -> str:
        """A 26-character id, like the `event.id` of PagerDuty's v3 webhooks."""
        return "".join(self._rng.choice(_BASE32) for _ in range(26))

    def uuid(self) -> str:
        """A random (version 4) UUID in its usual text form."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        """32 lower-case hex digits: the dedup keys PagerDuty makes for triggers without one."""
        return uuid.UUID(int=self._rng.getrandbits(128), version=4).hex


def stable_id(text: str, prefix: str = "P", length: int = 7) -> str:
    """An id that depends only on `text`: the same person keeps the same user id in every run
    and in every body a test builds by hand."""
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    chars = []
    for _ in range(length - 1):
        digest, index = divmod(digest, len(_UPPER_ALNUM))
        chars.append(_UPPER_ALNUM[index])
    return prefix + "".join(chars)


def iso_millis(moment: float) -> str:
    """`2020-10-02T18:45:22.169Z`: UTC with milliseconds (event times, Opsgenie times)."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def iso_seconds(moment: float) -> str:
    """`2020-04-09T15:16:27Z`: UTC to the second (PagerDuty's incident `created_at`)."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def parse_iso8601(text: str) -> datetime | None:
    """A timestamp in one of the ISO 8601 forms PagerDuty's examples use (`Z`, `+0000`,
    `+00:00`, with or without fractions), or None when it is not one."""
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
