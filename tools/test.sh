#!/usr/bin/env bash
# The project's whole test run, as CI runs it: Python env, tools (built once, cached),
# lint, generated-docs check, then pytest against the real helm and a real control plane.
# Extra arguments go to pytest (e.g. tools/test.sh tests/charts -k lint).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# CI installs the runner's extra too (torch): tests/runner runs the runner on CPU.
export KAIML_EXTRAS=dev,runner
# shellcheck source=bootstrap.sh
source "$repo/tools/bootstrap.sh"
bash tools/build-tools.sh
export PATH=$repo/.tools/bin:$venv/bin:$PATH
echo "== ruff"
ruff check .
echo "== removing a stale test cluster, if any"
python -m deploy cluster down --name "${KAIML_TEST_CLUSTER:-kaiml-test}"
python -m deploy cluster down --name "${KAIML_REALNODE_CLUSTER:-kaiml-realnode-test}"
# tests/realnode (marker `realnode`) start real containers: they need root and these Debian packages.
# Where they cannot be installed the tests fail with a paragraph that says why; they never skip.
bash tools/host-packages.sh || echo "!! the real-node packages are missing: tests/realnode will FAIL on this host" >&2
echo "== pytest"
exec python -m pytest "$@"
