"""Pager providers: PagerDuty, Opsgenie and signed webhooks, behind `PagerPort`.

`Pagers` holds one client per configured target, built from the policy and the secrets the
environment holds; a target whose secret is missing is reported by `warroom check` and its
calls fail as a credential problem (told in Slack, retried) rather than silently.
"""

from __future__ import annotations

from typing import Protocol

from app.domain.paging import OpsgenieTarget, PagerDutyTarget, PagingPolicy, WebhookTarget
from app.integrations.pagers.http import Http
from app.integrations.pagers.opsgenie import Opsgenie
from app.integrations.pagers.pagerduty import PagerDuty
from app.integrations.pagers.webhook import Webhook
from app.services.ports import PageCall, PagerError, PagerErrorKind


class _Client(Protocol):
    async def send(self, call: PageCall) -> str: ...


class Pagers:
    def __init__(self, policy: PagingPolicy, secrets: dict[str, str], http: Http | None = None):
        self.policy = policy
        self.http = http or Http()
        self._clients: dict[str, _Client] = {}
        self._missing: dict[str, str] = {}
        for name, target in policy.targets.items():
            secret = secrets.get(target.secret_env, "")
            if not secret:
                self._missing[name] = target.secret_env
                continue
            if isinstance(target, PagerDutyTarget):
                self._clients[name] = PagerDuty(target, secret, self.http)
            elif isinstance(target, OpsgenieTarget):
                self._clients[name] = Opsgenie(target, secret, self.http)
            elif isinstance(target, WebhookTarget):
                self._clients[name] = Webhook(target, secret, self.http)

    def configured(self, target: str) -> bool:
        return target in self._clients

    async def send(self, call: PageCall) -> str:
        client = self._clients.get(call.target)
        if client is None:
            if call.target in self._missing:
                raise PagerError(
                    PagerErrorKind.CREDENTIAL,
                    f"{self._missing[call.target]} is not set in Warroom's environment",
                )
            raise PagerError(PagerErrorKind.INVALID, f"no pager target {call.target!r}")
        return await client.send(call)

    def supports_test(self, target: str) -> bool:
        """Whether a test call reaches the target without paging anyone: only a webhook
        (PagerDuty and Opsgenie have no test event; a trigger would wake someone)."""
        return isinstance(self._clients.get(target), Webhook)

    async def test(self, target: str) -> str:
        """Send the target a test call (`event: "test"`); raises `PagerError`."""
        call = PageCall(
            target=target,
            action="test",
            dedup_key=f"{self.policy.dedup_prefix}-test",
            summary="Warroom test call (warroom check --live): nobody is paged",
            severity=4,
            incident_id=0,
        )
        return await self.send(call)

    async def close(self) -> None:
        await self.http.close()
