"""Training runs: a spec (spec.py) to charts/training's values, the workload (workload.py), its report
(results.py), the pods' logs and progress (progress.py), the object store's artifacts (artifacts.py) and
the local executor (onhost.py)."""
