"""The incident lifecycle as plain Python: no Slack, no database, no clock of its own."""
