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
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo[$extras]"
  find "$venv" -maxdepth 1 -name '.installed-*' -delete
  touch "$venv/.installed-$pyproject_key-$extras"
fi
unset installed have covered wanted stamp bootstrap_why
