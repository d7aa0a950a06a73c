"""Use cases. Each one validates, writes the database (with a timeline event), then tells Slack
through the gateway. Nothing here knows about Bolt, requests or Block Kit input forms."""
