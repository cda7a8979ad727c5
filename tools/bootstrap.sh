# Sourced by deploy.sh and tools/test.sh: create the project's virtualenv once, and again
# whenever pyproject.toml changes or an extra is wanted that is not installed yet. Sets $venv.
# KAIML_EXTRAS: the pyproject extras to install, a comma list (default `dev`; tools/test.sh
# adds `runner`, which brings torch, and so does deploy.sh for `bench run --local`);
# bootstrap_why: said with the install line.
repo=${repo:?bootstrap.sh needs \$repo}
venv=${KAIML_VENV:-$repo/.venv}
# Normalised (sorted, no blanks) so that `runner,dev` and `dev,runner` are one environment.
extras=$(printf '%s' "${KAIML_EXTRAS:-dev}" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -)
# One stamp per (pyproject.toml, installed extras), the extras in its name: an environment with
# more extras than wanted serves as it is (`./deploy.sh` after tools/test.sh installs nothing);
# a change of pyproject.toml invalidates every stamp.
pyproject_key=$(sha256sum "$repo/pyproject.toml" | cut -c1-16)
installed=""
for stamp in "$venv/.installed-$pyproject_key-"*; do
  [[ -f $stamp ]] || continue
  have=,${stamp##*/.installed-"$pyproject_key"-},
  covered=1
  IFS=, read -ra wanted <<<"$extras"
  for e in "${wanted[@]}"; do [[ $have == *",$e,"* ]] || covered=0; done
  if ((covered)); then installed=$stamp; break; fi
done
if [[ -z $installed ]]; then
  echo "[bootstrap] installing the Python environment (extras: $extras) into $venv${bootstrap_why:+: $bootstrap_why}" >&2
  # uv (pinned in versions.env, itself installed once from PyPI into the tool cache) keeps every wheel it
  # downloads in its cache and hard-links them into the venv: torch's 3 GB come from the cache in
  # seconds in a fresh clone, and cost no extra disk per venv. pip is the fallback where uv cannot be had.
  # editable_mode=compat: the project is on sys.path by a plain .pth line, not setuptools' import hook,
  # which cost every `./deploy.sh` about 30 ms of start-up.
  tool_cache=${XDG_CACHE_HOME:-$HOME/.cache}/kai-ml-platform
  uv_version=$(sed -n 's/^UV_VERSION=//p' "$repo/tools/versions.env")
  uv_dir=$tool_cache/tools/uv-$uv_version
  if [[ ! -x $uv_dir/bin/uv ]]; then
    echo "[bootstrap] installing uv $uv_version into $uv_dir (once)" >&2
    python3.11 -m pip install --quiet --disable-pip-version-check --target "$uv_dir.tmp" "uv==$uv_version" &&
      rm -rf "$uv_dir" && mv "$uv_dir.tmp" "$uv_dir" || rm -rf "$uv_dir.tmp"
  fi
  if [[ -x $uv_dir/bin/uv ]]; then
    # The registries' TLS goes through the system's trust store (as pip's does); a pip index or
    # find-links configured for pip is honoured.
    export UV_CACHE_DIR=${UV_CACHE_DIR:-$tool_cache/uv-cache} UV_NATIVE_TLS=${UV_NATIVE_TLS:-1}
    [[ -n ${PIP_INDEX_URL:-} && -z ${UV_DEFAULT_INDEX:-} ]] && export UV_DEFAULT_INDEX=$PIP_INDEX_URL
    [[ -n ${PIP_FIND_LINKS:-} && -z ${UV_FIND_LINKS:-} ]] && export UV_FIND_LINKS=$PIP_FIND_LINKS
    # --seed: the venv keeps a pip of its own for users who add packages by hand.
    "$uv_dir/bin/uv" venv --quiet --seed --allow-existing --python "$(command -v python3.11 || command -v python3)" "$venv"
    "$uv_dir/bin/uv" pip install --quiet --python "$venv/bin/python" -C editable_mode=compat -e "$repo[$extras]"
  else
    echo "[bootstrap] uv could not be installed; installing with pip (slower: no shared wheel cache)" >&2
    python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -C editable_mode=compat -e "$repo[$extras]"
  fi
  find "$venv" -maxdepth 1 -name '.installed-*' -delete
  touch "$venv/.installed-$pyproject_key-$extras"
fi
unset installed have covered wanted stamp bootstrap_why tool_cache uv_version uv_dir
