"""Telemetry: Prometheus metrics and log formatting, shared by every layer that records them.

It sits at the level of `app.store` and `app.messages` so that services, the Slack adapter,
the scheduler and the server can all record without depending on each other. It imports
nothing from the app.
"""
