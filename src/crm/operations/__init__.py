"""What an operator runs against a deployment: `crm check`."""
