# Sourced by bin/start and bin/test: a project-local virtualenv, (re)installed only when pyproject.toml changes.
# Usage: ensure_venv "" | ensure_venv "[test]"
# Quiet: one line per step; pip's own output (and this machine's many pip warnings) goes to .venv/install.log,
# whose tail is shown only when a step fails.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
INSTALL_LOG="$ROOT/.venv/install.log"

# step "what" cmd...: prints "what ..." then "done (Ns)" on the same line, or the log's tail and exits on failure.
step() {
  local what=$1 t0=$SECONDS; shift
  printf '%s ... ' "$what" >&2
  if "$@" >>"$INSTALL_LOG" 2>&1; then
    printf 'done (%ss)\n' $((SECONDS - t0)) >&2
  else
    printf 'FAILED\n' >&2
    grep -v "^WARNING: Location" "$INSTALL_LOG" | tail -n 30 >&2
    echo "(full log: $INSTALL_LOG)" >&2
    exit 1
  fi
}

ensure_venv() {
  local extras=$1 stamp="$ROOT/.venv/.installed${1:+-test}"
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
    mkdir -p "$ROOT/.venv"
    step "creating .venv" "$PY" -m venv "$ROOT/.venv"
  fi
  local want; want=$(sha1sum "$ROOT/pyproject.toml" | cut -c1-40)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    : >"$INSTALL_LOG"
    step "updating pip" "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
    step "installing the project${extras:+ with its test tools} into .venv (first time: 1-2 min)" \
      "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT$extras"
    echo "$want" > "$stamp"
  fi
  # The graphs' smaller plotly.js (maturity/plotlyjs.py): fetched with npm once per plotly.js version, checked
  # against its pinned sha512; without it the graphs load plotly.py's full bundle. Prints one line either way.
  "$ROOT/.venv/bin/python" -m maturity.plotlyjs --quiet-if-present
}

# Run a command as root: directly when we are root, else through sudo (CI images differ).
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
