"""A stateful fake of Atlassian Statuspage's REST API (v1) over real HTTP, for tests."""

from .server import FakeStatuspage
from .state import AffectedComponent, Component, Incident, IncidentUpdate

__all__ = ["AffectedComponent", "Component", "FakeStatuspage", "Incident", "IncidentUpdate"]
