"""Talking to a cluster: which one (target), the clients (the `kubernetes` package, a read-only stdlib
client for the hot path, both behind one read interface in reader.py, Helm), retries over API-server
restarts, and the list-then-watch loop."""
