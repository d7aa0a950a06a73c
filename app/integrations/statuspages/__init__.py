"""Hosted status pages behind `StatusPagePort`: Atlassian Statuspage.

`statuspage_client` builds the client a policy asks for from the secrets the environment holds.
A missing key still gives a client: `configured()` says False and each call fails as a
credential problem (told in Slack, retried) rather than silently.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.domain.statuspage import StatusPagePolicy
from app.integrations.statuspages.atlassian import AtlassianStatuspage
from app.integrations.statuspages.http import StatusHttp

__all__ = ["AtlassianStatuspage", "StatusHttp", "statuspage_client"]


def statuspage_client(
    policy: StatusPagePolicy, secrets: Mapping[str, str], http: StatusHttp | None = None
) -> AtlassianStatuspage | None:
    """The Atlassian client when the policy publishes there (enabled, provider "atlassian"),
    else None: the built-in page needs no client."""
    if not policy.publishes_to_atlassian or policy.atlassian is None:
        return None
    key = secrets.get(policy.atlassian.api_key_env, "")
    return AtlassianStatuspage(policy.atlassian, key, http or StatusHttp())
