"""What the tests share besides fixtures: constants, factories, the signed Slack client, readers
over the fake's state, and helpers to run the `warroom` command as a process."""
