#!/usr/bin/env bash
# Entry point for operators: bootstraps the Python environment once, then runs the deploy
# tool, which builds (or links from the cache) the tools it needs on first use.
# `./deploy.sh --help` lists the commands.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# `bench run ... --here` runs the benchmark runner in this environment: it needs the runner
# extra (torch), installed on first use; every other command goes without it.
if [[ ${1:-} == bench && ${2:-} == run && " $* " == *" --here "* && ,${KAIML_EXTRAS:-dev}, != *,runner,* ]]; then
  export KAIML_EXTRAS=${KAIML_EXTRAS:-dev},runner
  bootstrap_why="bench run --here runs the benchmark runner here, which needs the runner extra (torch; once)"
fi
# shellcheck source=tools/bootstrap.sh
source "$repo/tools/bootstrap.sh"
# --help shows the command as the user typed it. The tool's bytecode is cached (deploy/__pycache__,
# git-ignored) even where PYTHONDONTWRITEBYTECODE is set: otherwise every run compiles every module
# again (about 30 ms of a no-op re-run's 0.3 s).
KAIML_PROG=${KAIML_PROG:-$0} PYTHONDONTWRITEBYTECODE= exec "$venv/bin/python" -m deploy "$@"
