"""The local sandbox (`warroom sandbox`): the real bot against the fake Slack, with a web page
that plays Slack's client for the people in the workspace."""
