"""The launch path every workload shares: a Helm release of the workload's chart installed without
waiting, followed with watches, one result per unit of work collected into runs/<release>/results.jsonl,
pending reasons, progress, re-runs of lost results, status, results and delete. Each workload is a
sub-package that brings only its spec, its chart values and its result parsing."""
