"""The long-lived daemon: HTTP (health, readiness, metrics) and a scheduler of incremental syncs."""
