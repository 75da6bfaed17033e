"""Jobs: creation, claims, status, recovery and the sweeper, logs, outputs and artifacts."""
