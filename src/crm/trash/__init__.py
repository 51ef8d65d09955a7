"""The trash: deleted customers, contacts and interactions, restorable until purged."""
