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
echo "== removing a stale test cluster, if any"
python -m deploy cluster down --name "${KAIML_TEST_CLUSTER:-kaiml-test}"
python -m deploy cluster down --name "${KAIML_REALNODE_CLUSTER:-kaiml-realnode-test}"
# tests/realnode (marker `realnode`) start real containers: they need root and these Debian packages.
# Where they cannot be installed the tests fail with a paragraph that says why; they never skip.
bash tools/host-packages.sh || echo "!! the real-node packages are missing: tests/realnode will FAIL on this host" >&2
python -m deploy.cluster.hostcheck || true  # says loudly whether tests/realnode can pass here
echo "== pytest"
exec python -m pytest "$@"
