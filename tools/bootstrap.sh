# Sourced by deploy.sh and tools/test.sh: create the project's virtualenv once, and again
# whenever pyproject.toml or the wanted extras change. Sets $venv.
# KAIML_EXTRAS: the pyproject extras to install, a comma list (default `dev`; tools/test.sh
# adds `runner`, which brings torch).
repo=${repo:?bootstrap.sh needs \$repo}
venv=${KAIML_VENV:-$repo/.venv}
# Normalised (sorted, no blanks) so that `runner,dev` and `dev,runner` are one environment.
extras=$(printf '%s' "${KAIML_EXTRAS:-dev}" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -)
# One stamp per (pyproject.toml, extras): switching extras back and forth reinstalls only once
# each; a change of pyproject.toml invalidates every stamp.
pyproject_key=$(sha256sum "$repo/pyproject.toml" | cut -c1-16)
extras_key=$(printf '%s' "$extras" | sha256sum | cut -c1-8)
stamp=$venv/.installed-$pyproject_key-$extras_key
if [[ ! -f $stamp ]]; then
  echo "[bootstrap] installing the Python environment (extras: $extras) into $venv" >&2
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo[$extras]"
  find "$venv" -maxdepth 1 -name '.installed-*' ! -name ".installed-$pyproject_key-*" -delete
  touch "$stamp"
fi
