# Shared by run-app and run-tests: make .venv and install the project into it.
# Idempotent: dependencies are reinstalled only when pyproject.toml changes.

imgsim_setup() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
      echo "imgsim needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; return 1; }
    "$python" -m venv .venv
  fi
  local stamp=".venv/.imgsim-installed${extras:+-$extras}"
  local digest
  digest="$(cat pyproject.toml setup.py gallery/int4.c requirements.lock | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    echo "Installing dependencies into .venv (first run takes a few minutes)..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    # torch==2.13.0 is pinned in pyproject.toml: the CPU build, not a multi-GB CUDA one.
    # requirements.lock (scripts/lock) pins every version: the same install on every machine.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".${extras:+[$extras]}"
    echo "$digest" > "$stamp"
  fi
}
