"""A distributed load generator for OpenAI-compatible LLM endpoints, in AIPerf's shape.

Roles talk over ZMQ TCP: the controller (credits, dataset, records, event bus) binds; workers (HTTP
to the target) and record processors (tokenising, per-request metrics) connect and scale out. Every
role is `python -m loadgen ROLE`, so one image serves them all."""

__version__ = "0.1.0"
