"""Events: every committed change announced once, in order (the outbox, the relay, the feed, webhooks)."""
