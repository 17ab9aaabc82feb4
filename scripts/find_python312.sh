#!/usr/bin/env bash
# Print the path of a Python 3.12 interpreter, or fail saying where we looked.
# Order: $TRIANGULATE_PYTHON, python3.12 on PATH, pyenv's versions, common prefixes.
set -euo pipefail
candidates=()
[ -n "${TRIANGULATE_PYTHON:-}" ] && candidates+=("$TRIANGULATE_PYTHON")
command -v python3.12 >/dev/null 2>&1 && candidates+=("$(command -v python3.12)")
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
command -v pyenv >/dev/null 2>&1 && pyenv_root="$(pyenv root 2>/dev/null || echo "$pyenv_root")"
for d in "$pyenv_root"/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 \
         /usr/local/bin/python3.12 /usr/bin/python3.12 /opt/python/3.12*/bin/python3.12; do
  [ -x "$d" ] && candidates+=("$d")
done
for py in "${candidates[@]}"; do
  if "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null; then
    echo "$py"; exit 0
  fi
done
echo "error: no Python 3.12 found (looked at \$TRIANGULATE_PYTHON, PATH, $pyenv_root/versions/3.12*, /usr/bin)." >&2
echo "       pymc-marketing 1.x needs 3.12: install it (e.g. 'pyenv install 3.12') or set TRIANGULATE_PYTHON." >&2
exit 1
