#!/usr/bin/env bash
# Entry point for operators: bootstraps the Python environment once, then runs the deploy
# tool. `./deploy.sh --help` lists the commands.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/bootstrap.sh
source "$repo/tools/bootstrap.sh"
exec "$venv/bin/python" -m deploy "$@"
