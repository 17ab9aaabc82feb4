#!/usr/bin/env bash
# Install everything the project needs from the lock file: a pinned uv (from PyPI) in
# .tools/uv, then the locked environment in .venv, then the dbt manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/find_python312.sh)"
UV_VERSION="0.13.9"
if ! .tools/uv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  echo "==> installing uv $UV_VERSION with $PY"
  rm -rf .tools/uv
  "$PY" -m venv .tools/uv
  .tools/uv/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "==> syncing the locked environment (.venv, Python $("$PY" -c 'import platform; print(platform.python_version())'))"
UV_PYTHON_DOWNLOADS=never .tools/uv/bin/uv sync --locked --python "$PY" --quiet
echo "==> preparing the dbt manifest"
.venv/bin/dbt parse --project-dir dbt_project --profiles-dir dbt_project --quiet
