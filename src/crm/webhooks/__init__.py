"""Webhooks: subscriptions, and the signed, ordered, retried deliveries of the events they match."""
