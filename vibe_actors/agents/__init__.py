"""System agents (policy, quota, schema, webhooks, ...)."""
