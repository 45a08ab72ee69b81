# Sourced by bin/start and bin/test: a project-local virtualenv, (re)installed only when pyproject.toml changes.
# Usage: ensure_venv "" | ensure_venv "[test]"
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

ensure_venv() {
  local extras=$1 stamp="$ROOT/.venv/.installed${1:+-test}"
  [[ -x "$ROOT/.venv/bin/python" ]] || "$PY" -m venv "$ROOT/.venv"
  local want; want=$(sha1sum "$ROOT/pyproject.toml" | cut -c1-40)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "installing the project into .venv ..." >&2
    "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >&2
    "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT$extras" >&2
    echo "$want" > "$stamp"
  fi
}

# Run a command as root: directly when we are root, else through sudo (CI images differ).
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi; }
