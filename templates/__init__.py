"""The built-in message templates, installed as the package `app.templates` (see pyproject.toml)."""
