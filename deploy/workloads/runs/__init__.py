"""Coordinated and distributed runs across named nodes: run specs, charts/run's values, all-or-nothing
placement, the per-rank report with its aggregate, and `--here` (local rank processes)."""
