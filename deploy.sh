#!/usr/bin/env bash
# Entry point for operators: bootstraps the Python environment once, then runs the deploy
# tool, which builds (or links from the cache) the tools it needs on first use.
# `./deploy.sh --help` lists the commands.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# `bench run ... --here` and `run start ... --here` run the benchmark runner in this environment: it needs the runner
# extra (torch), installed on first use; every other command goes without it.
if [[ "${1:-} ${2:-}" =~ ^(bench\ run|run\ start)$ && " $* " == *" --here "* && ,${KAIML_EXTRAS:-dev}, != *,runner,* ]]; then
  export KAIML_EXTRAS=${KAIML_EXTRAS:-dev},runner
  bootstrap_why="$1 $2 --here runs the benchmark runner here, which needs the runner extra (torch; once)"
fi
# `train submit ... --executor local` likewise (and `auto`, when no cluster answers, says so and refuses
# without torch).
if [[ ${1:-} == train && ${2:-} == submit && " $* " == *" --executor local "* && ,${KAIML_EXTRAS:-dev}, != *,runner,* ]]; then
  export KAIML_EXTRAS=${KAIML_EXTRAS:-dev},runner
  bootstrap_why="train submit --executor local runs the runner here, which needs the runner extra (torch; once)"
fi
# shellcheck source=tools/bootstrap.sh
source "$repo/tools/bootstrap.sh"
# --help shows the command as the user typed it. The tool's bytecode is cached (deploy/__pycache__,
# git-ignored) even where PYTHONDONTWRITEBYTECODE is set: otherwise every run compiles every module
# again (about 30 ms of a no-op re-run's 0.3 s).
KAIML_PROG=${KAIML_PROG:-$0} PYTHONDONTWRITEBYTECODE= exec "$venv/bin/python" -m deploy "$@"
