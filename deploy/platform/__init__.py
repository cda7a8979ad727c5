"""The platform's release graph: values loaded (one loader, values.py), checked against the charts'
schemas, planned into levels, compared with what is deployed (no-op, diff, status) and applied with Helm,
over one cluster session per command (session.py)."""
