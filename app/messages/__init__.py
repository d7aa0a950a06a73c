"""Everything people read: templates rendered to mrkdwn and wrapped in Block Kit."""
