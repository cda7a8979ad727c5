# Sourced by deploy.sh and tools/test.sh: create the project's virtualenv once, and again
# whenever pyproject.toml changes. Sets $venv.
repo=${repo:?bootstrap.sh needs \$repo}
venv=${KAIML_VENV:-$repo/.venv}
stamp=$venv/.installed-$(sha256sum "$repo/pyproject.toml" | cut -c1-16)
if [[ ! -f $stamp ]]; then
  echo "[bootstrap] installing the Python environment into $venv" >&2
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo[dev]"
  rm -f "$venv"/.installed-* && touch "$stamp"
fi
