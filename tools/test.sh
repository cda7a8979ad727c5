#!/usr/bin/env bash
# The project's whole test run, as CI runs it: Python env, tools (built once, cached),
# lint, generated-docs check, then pytest against the real helm and a real control plane.
# Extra arguments go to pytest (e.g. tools/test.sh tests/charts -k lint).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# CI installs the runner's extra too (torch: tests/runner runs the runner on CPU) and the load engine's (tests/loadgen).
export KAIML_EXTRAS=dev,runner,loadgen
# shellcheck source=bootstrap.sh
source "$repo/tools/bootstrap.sh"
bash tools/build-tools.sh
# tests/charts/test_chart_cache_redis.py runs the cache chart's command line against a real Redis:
# Debian's redis-tools (the server binary as redis-check-rdb; unlike redis-server it starts no
# service). Installed once; a no-op when present.
if ! command -v redis-cli >/dev/null || ! command -v redis-check-rdb >/dev/null; then
  echo "== installing Debian's redis-tools (for the cache test)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-tools
fi
export PATH=$repo/.tools/bin:$venv/bin:$PATH
echo "== ruff"
ruff check .
# The rest of the suite runs on pytest-xdist workers, whole files each (module fixtures deploy once), every
# worker on a kwok cluster of its own (tests/conftest.py): the suite mostly waits on the API server, helm and
# timeouts, so the workers overlap well on 2 cores.
workers=${KAIML_TEST_WORKERS:-3}
echo "== removing a stale test cluster, if any"
python -m deploy cluster down --name "${KAIML_TEST_CLUSTER:-kaiml-test}"
for ((w = 0; w < workers; w++)); do python -m deploy cluster down --name "${KAIML_TEST_CLUSTER:-kaiml-test}-gw$w"; done
python -m deploy cluster down --name "${KAIML_REALNODE_CLUSTER:-kaiml-realnode-test}"
# tests/realnode (marker `realnode`) start real containers: they need root and these Debian packages.
# Where they cannot be installed the tests fail with a paragraph that says why; they never skip.
bash tools/host-packages.sh || echo "!! the real-node packages are missing: tests/realnode will FAIL on this host" >&2
python -m deploy.cluster.hostcheck || true  # says loudly whether tests/realnode can pass here
if [[ $# -gt 0 ]]; then
  echo "== pytest $*"
  exec python -m pytest "$@"
fi
# The whole suite: the real-node tests (a cluster of their own; mostly waiting on containers, image
# pushes and the kubelet) run beside the rest rather than after it, which saves their wall time.
realnode_log=$(mktemp -t kaiml-realnode.XXXXXX.log)
echo "== pytest: tests/realnode in the background (output below when done), the rest here"
python -m pytest -m realnode tests/realnode >"$realnode_log" 2>&1 &
realnode_pid=$!
trap 'kill -INT "$realnode_pid" 2>/dev/null || true' INT TERM  # (an interrupted run stops both)
rc=0
python -m pytest -m "not realnode and not timing" -n "$workers" --dist loadfile || rc=$?
realnode_rc=0
wait "$realnode_pid" || realnode_rc=$?
echo "== pytest -m realnode (tests/realnode)"
cat "$realnode_log"
rm -f "$realnode_log"
# Tests that compare measured times run alone, now that nothing else runs: on 2 busy cores they measure the load.
echo "== pytest -m timing (alone)"
timing_rc=0
python -m pytest -m timing || timing_rc=$?
echo "== pytest: the rest exit $rc, tests/realnode exit $realnode_rc, the timing tests exit $timing_rc"
if ((rc != 0)); then exit "$rc"; fi
if ((realnode_rc != 0)); then exit "$realnode_rc"; fi
exit "$timing_rc"
