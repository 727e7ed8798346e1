#!/usr/bin/env bash
# Benchmark harness (issue 7): etl against its peers on the same machine, side by side.
#
#   scripts/bench.sh [--records N] [--runs K] [--out DIR] [--smoke] [--no-publish] [--keep-work]
#
# On a fresh machine it installs what is missing (GNU time, pigz, a Python venv with the peers
# in ~/.cache/etl/bench-venv), builds etl (release; --smoke: the debug build), starts Kafka with
# scripts/kafka.sh unless one is running (and stops only a broker it started), generates N
# breadcrumbs with scripts/gen_breadcrumbs.py, produces them to a 6-partition topic with
# `etl produce`, then measures (a warm-up round + K rounds, every tool of a stage once per round,
# so that the machine's drift over minutes hits etl and its peers alike; min/median/max):
#   raw       etl raw  vs  seed_archive.py --mode fernet / chunked  vs  zlib-6 alone on all cores
#   standard  etl standard (from the encrypted raw layer)  vs  DuckDB / polars / pyarrow NDJSON → Parquet
#   query     four queries: etl query  vs  DuckDB on etl's standard layer
#   scaling   raw + standard at 20% and 40% of N (1M and 2M for the default 5M)
# and writes DIR/BENCHMARKS.md + DIR/latest.json; a full run also copies them to ./BENCHMARKS.md
# and ./bench-results/latest.json (not with --no-publish). Hand-written analysis kept in
# bench-results/notes.md is included in BENCHMARKS.md.
#
# --smoke: 20,000 records, 1 run, no warm-up, debug build, nothing published (CI runs this).
# Exit status is non-zero if any step fails.
#
# Environment: KAFKA_PORT (default 9092), ETL_CACHE_DIR (default ~/.cache/etl), CARGO_TARGET_DIR
# (default $ETL_CACHE_DIR/target, shared with .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

records=5000000
runs=3
out=""
smoke=0
publish=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    --records=*) records="${1#*=}"; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --smoke) smoke=1; shift ;;
    --no-publish) publish=0; shift ;;
    --keep-work) extra+=(--keep-work); shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$smoke" = 1 ]; then
  records=20000
  runs=1
  publish=0
  out="${out:-bench-out/smoke}"
  extra+=(--smoke --idle 2)
else
  out="${out:-bench-out/full}"
fi
[ "$publish" = 1 ] && extra+=(--publish)
log() { echo "bench.sh: $*" >&2; }
t_start=$SECONDS

# ---- system tools ----
need_apt=()
[ -x /usr/bin/time ] || need_apt+=(time)
command -v pigz >/dev/null || need_apt+=(pigz)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

# ---- Python venv with the peers ----
VENV="${ETL_CACHE_DIR:-$HOME/.cache/etl}/bench-venv"
PKGS=(duckdb==2.0.0 polars==2.1.0 pyarrow==26.0.1 confluent-kafka==2.16.1 pycryptodome==4.4.0 rsa==4.9.1 cryptography==50.0.2 pytz)
want="${PKGS[*]}"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.bench-pkgs" 2>/dev/null)" != "$want" ]; then
  log "installing ${PKGS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PKGS[@]}" >&2
  echo "$want" >"$VENV/.bench-pkgs"
fi
PY="$VENV/bin/python"

# ---- build etl ----
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
# The same build directory as .ci/run: on a machine that ran CI, only etl itself recompiles
# (a clean release build with DataFusion takes ~20-30 min on 2 cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${ETL_CACHE_DIR:-$HOME/.cache/etl}/target}"
# Smoke: the debug binary exactly as the tests build it (same feature set, so after
# `cargo test` this is a no-op instead of a second build of every dependency).
if [ "$smoke" = 1 ]; then profile=debug; build=(cargo test --no-run --test it); else profile=release; build=(cargo build --release); fi
log "building etl ($profile): ${build[*]}"
t_build=$SECONDS
"${build[@]}" >&2
target_dir="$(cargo metadata --no-deps --format-version 1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ETL="$target_dir/$profile/etl"
[ -x "$ETL" ] || { log "no etl binary at $ETL"; exit 1; }
log "etl: $ETL (build step $((SECONDS - t_build))s)"

# ---- Kafka ----
started_kafka=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  started_kafka=1
fi
eval "$(scripts/kafka.sh start | grep '^KAFKA_BROKERS=')"
log "Kafka at $KAFKA_BROKERS"

# ---- measure ----
mkdir -p "$out"
cleanup_topic=()
# A broker this script started goes away at the end anyway; on a shared broker, drop the big topic.
[ "$started_kafka" = 0 ] && [ "$smoke" = 1 ] && cleanup_topic=(--cleanup-topic)
"$PY" scripts/bench.py run --etl "$ETL" --brokers "$KAFKA_BROKERS" --records "$records" --runs "$runs" \
  --out "$out" "${extra[@]}" "${cleanup_topic[@]}"
log "done in $((SECONDS - t_start))s; report: $out/BENCHMARKS.md"
