"""Slack surface: the Bolt app, its listeners by surface, modal views, and the Web API gateway."""
