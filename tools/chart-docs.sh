#!/usr/bin/env bash
# Regenerate what is generated inside charts/:
#   - the shared JSON-schema definitions copied into each values.schema.json
#     (charts/platform-lib/schema/sync.py; Helm resolves a schema's $refs in that file only);
#   - each chart's README.md, by helm-docs from the `# --` comments of its values.yaml.
# Usage: tools/chart-docs.sh [--check]
#   --check  change nothing; exit 1 and name the stale files when any is out of date (CI).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
helm_docs=${KAIML_TOOLS_BIN:-$repo/.tools/bin}/helm-docs
python=${PYTHON:-$(command -v python3)}
check=false
case ${1:-} in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
if [[ ! -x $helm_docs ]]; then
  echo "chart-docs: $helm_docs not found; build it with tools/build-tools.sh" >&2
  exit 2
fi
# Same flags for both modes, so that --check compares like with like.
run_helm_docs() { (cd "$1" && "$helm_docs" --chart-search-root . --ignore-file .helmdocsignore --skip-version-footer --log-level warning); }

if ! $check; then
  "$python" "$repo/charts/platform-lib/schema/sync.py"
  run_helm_docs "$repo/charts"
  exit 0
fi

stale=0
"$python" "$repo/charts/platform-lib/schema/sync.py" --check || stale=1
# helm-docs has no check mode: generate into a copy and compare.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && tar --exclude='charts/*/charts' -cf - charts) | tar -xf - -C "$work"
run_helm_docs "$work/charts"
for generated in "$work"/charts/*/README.md; do
  chart=$(basename "$(dirname "$generated")")
  if ! cmp -s "$generated" "$repo/charts/$chart/README.md"; then
    echo "stale: charts/$chart/README.md (run tools/chart-docs.sh)"
    stale=1
  fi
done
exit $stale
