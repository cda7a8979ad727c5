"""Distributed LLM load generation as a workload: loadgen's roles as Indexed Jobs of charts/loadgen."""
