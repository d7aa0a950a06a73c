"""Stateful fakes of the paging providers (PagerDuty, Opsgenie) over real HTTP, for tests."""

from .faults import Fault, FaultPlan
from .opsgenie import ApiKey, FakeOpsgenie
from .opsgenie_alerts import Alert, AlertRequest
from .pagerduty import FakePagerDuty
from .pagerduty_state import Event, Incident, Service, User
from .pagerduty_webhooks import Delivery, Links, Subscription, sign, webhook_body
from .server import Call

__all__ = [
    "Alert",
    "AlertRequest",
    "ApiKey",
    "Call",
    "Delivery",
    "Event",
    "FakeOpsgenie",
    "FakePagerDuty",
    "Fault",
    "FaultPlan",
    "Incident",
    "Links",
    "Service",
    "Subscription",
    "User",
    "sign",
    "webhook_body",
]
