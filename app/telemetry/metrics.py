"""The bot's Prometheus metrics, defined in one place.

Every `Metrics` holds its own `CollectorRegistry` rather than prometheus_client's global one:
the tests run several bots in one process (and `build()` may be called more than once), and a
metric registered twice in the global registry raises. Each `Runtime` has one `Metrics`, which
its `/metrics` route exposes.

Labels stay low in cardinality: surfaces, Slack method names, Slack's error codes (a bounded
set, and cleaned here), severities, alert source and pager provider names from the policy
file, outcomes. Never an incident number, a user ID or free text.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Slack's 3-second limit sits between 2.5 and 5.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0)
RETRY_AFTER_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The engine ticks every 15 s by default: a lag under a tick is normal.
LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SURFACES = frozenset({"command", "action", "view", "shortcut", "event"})

_LABEL = re.compile(r"[^a-z0-9_.\-]")


def label(value: str, limit: int = 60) -> str:
    """A label value that stays small and plain, whatever a remote party sent."""
    return _LABEL.sub("_", value.lower())[:limit] or "unknown"


class Metrics:
    """The metric objects of one running bot, in their own registry.

    `refresh` is an optional coroutine the `/metrics` route awaits before each scrape: the
    gauges read from the database (outbox depth, open incidents) are sampled then, so they are
    as fresh as the scrape, without a thread or a timer.
    """

    def __init__(self, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.refresh: Callable[[], Awaitable[None]] | None = None
        self.ack_seconds = Histogram(
            "warroom_ack_seconds",
            "Time from a Slack request reaching its listener to its acknowledgment, by surface.",
            ["surface"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.slack_calls = Counter(
            "warroom_slack_api_calls",
            "Slack Web API call attempts, by method and outcome (ok, Slack's error code, "
            "429, transport).",
            ["method", "outcome"],
            registry=r,
        )
        self.slack_retry_after = Histogram(
            "warroom_slack_retry_after_seconds",
            "The Retry-After Slack sent with each 429, by method.",
            ["method"],
            buckets=RETRY_AFTER_BUCKETS,
            registry=r,
        )
        self.slack_token_refused = Gauge(
            "warroom_slack_token_refused",
            "1 while Slack refuses the bot token (messages and pages are held), else 0.",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "warroom_outbox_depth", "Messages queued for Slack, not yet delivered.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "warroom_outbox_oldest_age_seconds",
            "Age of the oldest message still queued for Slack (0 when none is).",
            registry=r,
        )
        self.escalation_lag = Histogram(
            "warroom_escalation_lag_seconds",
            "How late escalation steps fired: the time fired minus the time due, by kind.",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.escalation_steps = Counter(
            "warroom_escalation_steps",
            "Escalation steps ended, by kind and outcome (fired, cancelled, failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.incidents_open = Gauge(
            "warroom_incidents_open",
            "Incidents open (investigating or mitigated), by severity.",
            ["severity"],
            registry=r,
        )
        self.declared = Counter(
            "warroom_incidents_declared",
            "Incidents declared, by severity.",
            ["severity"],
            registry=r,
        )
        self.resolved = Counter(
            "warroom_incidents_resolved",
            "Incidents resolved, by severity.",
            ["severity"],
            registry=r,
        )
        self.alert_webhooks = Counter(
            "warroom_alert_webhooks",
            "Alert webhook requests, by source and outcome (declare, triage, attach, drop, "
            "unauthorised, rejected, error, ...).",
            ["source", "outcome"],
            registry=r,
        )
        self.page_calls = Counter(
            "warroom_page_calls",
            "Calls to pager providers, by provider and outcome (sent, transient, credential, "
            "invalid).",
            ["provider", "outcome"],
            registry=r,
        )
        self.build = Info("warroom_build", "The running Warroom's version.", registry=r)
        self.build.info({"version": version or "unknown", "python": platform.python_version()})
        for severity in ("1", "2", "3", "4"):
            # Present from the start, so rate() and absent() behave before the first declare.
            self.declared.labels(severity=severity)
            self.resolved.labels(severity=severity)
            self.incidents_open.labels(severity=severity).set(0)

    # --- recording ------------------------------------------------------------------------

    def ack(self, surface: str, seconds: float) -> None:
        self.ack_seconds.labels(surface=surface if surface in SURFACES else "other").observe(
            seconds
        )

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method=label(method, 40), outcome=label(outcome)).inc()

    def slack_rate_limited(self, method: str, seconds: float) -> None:
        self.slack_call(method, "429")
        self.slack_retry_after.labels(method=label(method, 40)).observe(seconds)

    def step_ended(self, kind: str, outcome: str, lag_seconds: float | None = None) -> None:
        self.escalation_steps.labels(kind=label(kind), outcome=outcome).inc()
        if lag_seconds is not None:
            self.escalation_lag.labels(kind=label(kind)).observe(max(0.0, lag_seconds))

    def alert_webhook(self, source: str, outcome: str) -> None:
        self.alert_webhooks.labels(source=label(source), outcome=label(outcome)).inc()

    def page_call(self, provider: str, outcome: str) -> None:
        self.page_calls.labels(provider=label(provider), outcome=label(outcome)).inc()

    # --- exposing -------------------------------------------------------------------------

    async def exposition(self) -> bytes:
        """The text format a Prometheus scrape reads, after refreshing the sampled gauges."""
        if self.refresh is not None:
            await self.refresh()
        return generate_latest(self.registry)
