"""The escalation engine: due rows in the database, claimed and fired by one ticking job."""
