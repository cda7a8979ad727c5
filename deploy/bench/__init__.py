"""`./deploy.sh bench`: launch a sweep as a charts/benchmark release, follow its pods with one
watch, collect each config's result once into runs/bench-<sweep>/results.jsonl, and report."""
