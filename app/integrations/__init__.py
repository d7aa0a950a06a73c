"""Adapters for the outside systems Warroom talks to: the Slack Web API today; alert sources,
pagers and status pages next. Each implements a port that `app.services` defines."""
