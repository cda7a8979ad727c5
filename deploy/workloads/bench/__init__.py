"""Benchmark sweeps (`./deploy.sh bench`): a sweep file expanded into configs, charts/benchmark's values,
the runner's KAIML_RESULT per config, and the same configs run on this machine without a cluster."""
