"""Whether Slack accepts the bot token right now.

A revoked, expired or wrong token (`invalid_auth`, `token_revoked` …) fails every call the same
way, so there is no point in sending messages or firing steps meanwhile: they would all fail,
and a message dropped for it would be lost for good. When any call meets such an error, the
Slack adapter records it here and holds every later call; delivery and the escalation engine
see `waiting()` and leave their work queued. `auth.test` is tried again on a backoff (5 s,
10 s, 20 s … at most 5 minutes); the first one Slack accepts lifts the pause and the queued
work goes out. The state is said once in the logs, and in `/healthz` while it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

FIRST_PROBE_SECONDS = 5
MAX_PROBE_SECONDS = 300


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackAuth:
    def __init__(self, now: Callable[[], datetime] = _utcnow, announce: bool = True) -> None:
        self._now = now
        self._announce = announce  # log the pause and its end (the running bot does)
        self.problem: str | None = None  # Slack's error code while the token is refused
        self.since: datetime | None = None
        self.next_probe: datetime | None = None
        self._failed_probes = 0

    @property
    def paused(self) -> bool:
        return self.problem is not None

    def probe_due(self) -> bool:
        return self.paused and (self.next_probe is None or self._now() >= self.next_probe)

    def waiting(self) -> bool:
        """Paused, and not yet time to try the token again: leave Slack alone."""
        return self.paused and not self.probe_due()

    def refused(self, code: str) -> None:
        """Slack refused the token: hold Slack work (said once in the logs per pause)."""
        if self.problem is None:
            self.since = self._now()
            self._failed_probes = 0
        if self.problem is None and self._announce:
            log.error(
                "Slack refuses the bot token (%s): messages, pages and war-room changes are held "
                "until it works again (auth.test is retried on a backoff). Fix SLACK_BOT_TOKEN "
                "or reinstall the Slack app.",
                code,
            )
        self.problem = code
        self._schedule()

    def probing(self) -> None:
        """A probe is starting: the next one waits longer, whatever this one finds."""
        self._failed_probes += 1
        self._schedule()

    def accepted(self) -> None:
        """Slack accepted the token: lift the pause."""
        if self.problem is not None and self._announce:
            log.warning(
                "Slack accepts the bot token again after %s: sending what was held",
                self.problem,
            )
        self.problem = None
        self.since = None
        self.next_probe = None
        self._failed_probes = 0

    def _schedule(self) -> None:
        seconds = min(FIRST_PROBE_SECONDS * 2**self._failed_probes, MAX_PROBE_SECONDS)
        self.next_probe = self._now() + timedelta(seconds=seconds)
