#!/usr/bin/env bash
# A Python venv with the peer tools the tests compare against (DuckDB, pyarrow, PySpark — which
# runs Spark in local mode on the machine's Java 17+), cached under
# ~/.cache/etl/venv. Prints the venv's python path. Idempotent.
#
#   scripts/pyenv.sh            create/update, print path of python
set -euo pipefail
VENV="${ETL_CACHE_DIR:-$HOME/.cache/etl}/venv"
PKGS=(duckdb==2.0.0 pyarrow==26.0.1 pyspark==4.3.0)
stamp="$VENV/.etl-pkgs"
want="${PKGS[*]}"
# Tests call this concurrently: on a fresh machine one would re-create the venv while another
# installs into it (or runs it). One at a time; the others wait, then find it ready.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "pyenv.sh: installing ${PKGS[*]} into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PKGS[@]}" >&2
  echo "$want" > "$stamp"
fi
echo "$VENV/bin/python"
