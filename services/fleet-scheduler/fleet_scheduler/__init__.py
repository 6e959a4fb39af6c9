"""The fleet-scheduler service."""
