#!/usr/bin/env bash
# Object-store emulators for etl's integration tests and CI: install (cached), start, stop.
#
#   azurite  Azure Blob   npm `azurite`          http://127.0.0.1:10000/devstoreaccount1
#   s3       S3           PyPI `moto[server]`    http://127.0.0.1:5000
#   gcs      GCS          fake-gcs-server with XML API (fork of fsouza/fake-gcs-server PR #1164),
#                         built with the Go toolchain   http://127.0.0.1:4443
#
# Run `scripts/emulators.sh help` for usage. Everything runs on 127.0.0.1 only.
set -euo pipefail

# ----------------------------------------------------------------------------- settings
CACHE_ROOT="${ETL_CACHE_DIR:-$HOME/.cache/etl}/emulators"
STATE_DIR="${EMULATOR_STATE_DIR:-/tmp/etl-emulators}"
HOST=127.0.0.1
BUCKET="${ETL_TEST_BUCKET:-etl}"

AZURITE_PORT="${ETL_AZURITE_PORT:-10000}"
S3_PORT="${ETL_S3_PORT:-5000}"
GCS_PORT="${ETL_GCS_PORT:-4443}"

# Azurite 3.36+ declares node >= 21 (3.37: >= 22); 3.35.0 is the newest that supports node 20.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
default_azurite_version() { if [ "$(node_major)" -ge 22 ]; then echo 3.37.0; else echo 3.35.0; fi; }
AZURITE_VERSION="${ETL_AZURITE_VERSION:-}"
MOTO_VERSION="${ETL_MOTO_VERSION:-5.2.5}"

# GCS: upstream fake-gcs-server (up to v1.56.1 at least) answers the XML API's
# `PUT /<bucket>/<object>` -- which object_store uses for every upload -- with
# 400 "invalid uploadType". We only run a build whose XML PUT really works.
# ETL_FAKE_GCS_REPLACE: space-separated candidates, each `module@version-or-query` (a fork that
# keeps the module path github.com/fsouza/fake-gcs-server, resolved through the Go module proxy)
# or an absolute path to a local checkout of such a fork. First one that builds wins.
FAKE_GCS_UPSTREAM=github.com/fsouza/fake-gcs-server
FAKE_GCS_UPSTREAM_VERSION="${ETL_FAKE_GCS_UPSTREAM_VERSION:-v1.56.1}"
FAKE_GCS_REPLACE="${ETL_FAKE_GCS_REPLACE:-github.com/tustvold/fake-gcs-server@latest github.com/LarsAlmgren/fake-gcs-server@latest}"

# Well-known Azurite development account (public, documented by Microsoft).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZ_VERSION_HDR=2021-08-06

AZURITE_DIR="$CACHE_ROOT/azurite"          # npm prefix
MOTO_VENV="$CACHE_ROOT/moto-venv"          # python venv
GCS_DIR="$CACHE_ROOT/fake-gcs-server"      # throwaway Go module + bin/

ALL=(azurite s3 gcs)
EXIT_UNAVAILABLE=3

log()  { printf '[emulators] %s\n' "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

usage() {
  cat <<EOF
Usage: $(basename "$0") COMMAND [azurite|s3|gcs|all]...

Commands (target defaults to 'all'):
  install   install into the cache (no-op when already there)
  start     install if needed, start in the background, wait until it answers, create the
            bucket/container '$BUCKET', run the create-only smoke check (idempotent)
  stop      stop what 'start' started
  status    say what is running
  smoke     re-run the create-only precondition checks against running emulators
  env       print KEY=VALUE lines for the running emulators (for eval / \$GITHUB_ENV);
            notes about missing ones go to stderr
  help      this text

Emulators:
  azurite  npm azurite@${AZURITE_VERSION:-$(default_azurite_version)} (Azure Blob)       $HOST:$AZURITE_PORT
  s3       PyPI moto[server]==$MOTO_VERSION (S3)             $HOST:$S3_PORT
  gcs      fake-gcs-server fork with the XML API (GCS)       $HOST:$GCS_PORT
           built from ETL_FAKE_GCS_REPLACE candidates:
             $FAKE_GCS_REPLACE
           Skipped with a message when no candidate builds, or when the build's XML PUT
           does not work (upstream releases don't have it).

Exit status: 0 on success; with 'all', an unavailable gcs is a skip, not a failure.
A target named explicitly that cannot be provided exits $EXIT_UNAVAILABLE.

Paths: cache ${CACHE_ROOT}  (ETL_CACHE_DIR)
       state ${STATE_DIR}  (EMULATOR_STATE_DIR: logs, pid files)
Ports: ETL_AZURITE_PORT, ETL_S3_PORT, ETL_GCS_PORT. Bucket name: ETL_TEST_BUCKET.
EOF
}

# ----------------------------------------------------------------------------- helpers
# http_code METHOD URL [curl args...] -> prints the status code (000 when nothing answers)
http_code() {
  local method=$1 url=$2; shift 2
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" "$@" "$url" || true
}

port_answers() { [ "$(http_code GET "http://$HOST:$1/")" != 000 ]; }

pid_file() { echo "$STATE_DIR/$1.pid"; }
log_file() { echo "$STATE_DIR/$1.log"; }

proc_token() {
  case $1 in azurite) echo azurite ;; s3) echo moto_server ;; gcs) echo fake-gcs-server ;; esac
}

# our_pid NAME -> prints the pid if the pid file points at a live process of that emulator
our_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(proc_token "$1")" || return 1
  echo "$pid"
}

port_of() { case $1 in azurite) echo "$AZURITE_PORT" ;; s3) echo "$S3_PORT" ;; gcs) echo "$GCS_PORT" ;; esac; }

# Azure SharedKey signing (stdlib only). Args: METHOD URL CONTENT_LENGTH ["Header: value"]...
# Prints every header the request must carry (the given ones plus x-ms-date, x-ms-version,
# Authorization), one per line, for curl -H.
AZ_SIGN_PY='
import base64, hashlib, hmac, sys, urllib.parse
from email.utils import formatdate
account, key, version, method, url, length = sys.argv[1:7]
headers = {}
for h in sys.argv[7:]:
    k, v = h.split(":", 1)
    headers[k.strip().lower()] = v.strip()
headers["x-ms-date"] = formatdate(usegmt=True)
headers["x-ms-version"] = version
u = urllib.parse.urlsplit(url)
std = ["content-encoding", "content-language", "", "content-md5", "content-type", "date",
       "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"]
parts = [method.upper()]
for name in std:
    parts.append((length if length not in ("", "0") else "") if name == "" else headers.get(name, ""))
canon_headers = "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers) if k.startswith("x-ms-"))
resource = "/" + account + (u.path or "/")
query = {}
for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
    query.setdefault(k.lower(), []).append(v)
for k in sorted(query):
    resource += "\n%s:%s" % (k, ",".join(sorted(query[k])))
to_sign = "\n".join(parts) + "\n" + canon_headers + resource
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()
headers["authorization"] = "SharedKey %s:%s" % (account, sig)
for k, v in headers.items():
    print("%s: %s" % (k, v))
'

# az_curl METHOD PATH_AND_QUERY BODY ["Header: value"]... -> prints the HTTP status;
# the response body goes to $STATE_DIR/azurite.last-response
az_curl() {
  local method=$1 path=$2 body=$3; shift 3
  local url="http://$HOST:$AZURITE_PORT/$AZ_ACCOUNT$path" hdrs=() line
  while IFS= read -r line; do hdrs+=(-H "$line"); done < <(
    python3 -c "$AZ_SIGN_PY" "$AZ_ACCOUNT" "$AZ_KEY" "$AZ_VERSION_HDR" "$method" "$url" "${#body}" "$@")
  if [ -n "$body" ]; then
    curl -s -o "$STATE_DIR/azurite.last-response" -w '%{http_code}' --max-time 10 -X "$method" \
      "${hdrs[@]}" --data-binary "$body" "$url" || true
  else
    curl -s -o "$STATE_DIR/azurite.last-response" -w '%{http_code}' --max-time 10 -X "$method" \
      "${hdrs[@]}" -H 'Content-Length: 0' "$url" || true
  fi
}

# s3_code METHOD PATH [curl args...] -> HTTP status of a SigV4-signed request (key/secret
# test/test, us-east-1). moto does not check signatures, but it treats unsigned requests as
# anonymous: those may create an object yet get 403 on overwrite/delete.
s3_code() {
  local method=$1 path=$2; shift 2
  http_code "$method" "http://$HOST:$S3_PORT$path" --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test "$@"
}

# ----------------------------------------------------------------------------- install
install_azurite() {
  local v="${AZURITE_VERSION:-$(default_azurite_version)}"
  local bin="$AZURITE_DIR/node_modules/.bin/azurite-blob" stamp="$AZURITE_DIR/.etl-version"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$v" ]; then
    log "azurite $v already installed ($AZURITE_DIR)"; return 0
  fi
  command -v npm >/dev/null || die "npm not found (needed for azurite)"
  local t0; t0=$(now)
  log "installing azurite@$v with npm into $AZURITE_DIR ..."
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error "azurite@$v" \
    >"$AZURITE_DIR/install.log" 2>&1 || { tail -n 30 "$AZURITE_DIR/install.log" >&2; die "npm install azurite@$v failed"; }
  [ -x "$bin" ] || die "azurite-blob missing after install"
  echo "$v" >"$stamp"
  log "azurite $v installed in $(since "$t0")"
}

install_s3() {
  local bin="$MOTO_VENV/bin/moto_server" stamp="$MOTO_VENV/.etl-version"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$MOTO_VERSION" ]; then
    log "moto $MOTO_VERSION already installed ($MOTO_VENV)"; return 0
  fi
  command -v python3 >/dev/null || die "python3 not found (needed for moto)"
  local t0; t0=$(now)
  log "installing moto[server]==$MOTO_VERSION into venv $MOTO_VENV ..."
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$MOTO_VENV/bin/pip" install --disable-pip-version-check -q "moto[server]==$MOTO_VERSION" \
    >"$CACHE_ROOT/moto-install.log" 2>&1 || { tail -n 30 "$CACHE_ROOT/moto-install.log" >&2; die "pip install moto[server] failed"; }
  [ -x "$bin" ] || die "moto_server missing after install"
  echo "$MOTO_VERSION" >"$stamp"
  log "moto $MOTO_VERSION installed in $(since "$t0")"
}

gcs_source() { sed -n 2p "$GCS_DIR/.etl-source" 2>/dev/null; }

# Builds $GCS_DIR/bin/fake-gcs-server from the first ETL_FAKE_GCS_REPLACE candidate that
# resolves and compiles. Returns 1 (with the reasons logged) when none does.
install_gcs() {
  local bin="$GCS_DIR/bin/fake-gcs-server" stamp="$GCS_DIR/.etl-source"
  # The stamp holds the candidate list it was built for, then the source that won.
  if [ -x "$bin" ] && [ "$(head -n1 "$stamp" 2>/dev/null)" = "$FAKE_GCS_REPLACE" ]; then
    log "fake-gcs-server already built from $(gcs_source) ($bin)"; return 0
  fi
  rm -f "$bin" "$stamp"
  command -v go >/dev/null || { log "SKIP gcs: no Go toolchain"; return 1; }
  local t0 cand mod query target src buildlog
  t0=$(now)
  mkdir -p "$GCS_DIR/bin"
  buildlog="$GCS_DIR/build.log"
  : >"$buildlog"
  export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -mod=mod"
  for cand in $FAKE_GCS_REPLACE; do
    local work="$GCS_DIR/src"
    rm -rf "$work"; mkdir -p "$work"
    cat >"$work/go.mod" <<EOF
module etl.local/fake-gcs-server-build

go 1.22

require $FAKE_GCS_UPSTREAM $FAKE_GCS_UPSTREAM_VERSION
EOF
    if [[ $cand == /* ]]; then
      [ -f "$cand/go.mod" ] || { log "gcs candidate $cand: no go.mod there"; continue; }
      target="$cand"; src="$cand (local checkout)"
    else
      mod=${cand%@*}; query=${cand#*@}; [ "$mod" = "$cand" ] && query=latest
      log "gcs candidate $mod@$query: resolving through the Go module proxy ..."
      local info ver
      # go list -m reports the resolved version even though a fork's go.mod names upstream.
      info=$(cd "$work" && go list -m -e -json "$mod@$query" 2>&1) || true
      echo "== $cand: go list -m -e -json" >>"$buildlog"; echo "$info" >>"$buildlog"
      ver=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",\{0,1\}$/\1/p' | head -n1)
      # An unresolved query comes back verbatim ("latest", a branch name) next to an Error.
      if [[ ! $ver =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
        log "gcs candidate $mod@$query: not available: $(printf '%s\n' "$info" | grep -o '"Err": ".*"' | head -n1 | cut -c1-300)"
        continue
      fi
      target="$mod $ver"; src="$mod@$ver"
    fi
    (cd "$work" && go mod edit -replace "$FAKE_GCS_UPSTREAM=${target// /@}") >>"$buildlog" 2>&1 || {
      log "gcs candidate $cand: go mod edit failed"; continue; }
    printf 'package main\n\nimport _ "%s"\n' "$FAKE_GCS_UPSTREAM" >"$work/tools.go"
    sed -i '1i //go:build tools' "$work/tools.go"
    log "building fake-gcs-server from $src (takes ~2-3 min on 2 cores) ..."
    if (cd "$work" && go mod tidy >>"$buildlog" 2>&1 && \
        go build -o "$bin.tmp" "$FAKE_GCS_UPSTREAM" >>"$buildlog" 2>&1); then
      mv "$bin.tmp" "$bin"
      printf '%s\n%s\n' "$FAKE_GCS_REPLACE" "$src" >"$stamp"
      log "fake-gcs-server built from $src in $(since "$t0")"
      return 0
    fi
    log "gcs candidate $cand: build failed (see $buildlog):"; tail -n 5 "$buildlog" >&2
  done
  log "SKIP gcs: no fake-gcs-server with the XML API could be built (tried: $FAKE_GCS_REPLACE)."
  log "  Set ETL_FAKE_GCS_REPLACE to a reachable fork (module@version) or a local checkout path."
  return 1
}

# ----------------------------------------------------------------------------- start / stop
spawn() { # NAME CMD... : start detached, pid file + log
  local name=$1; shift
  mkdir -p "$STATE_DIR"
  local logf; logf=$(log_file "$name")
  echo "=== $(date -u +%FT%TZ) $*" >>"$logf"
  # Own session (setsid) so a Ctrl-C or hang-up of the calling shell does not reach it;
  # cwd = state dir so nothing lands in the caller's directory.
  if command -v setsid >/dev/null; then
    (cd "$STATE_DIR" && exec setsid "$@" >>"$logf" 2>&1 </dev/null) &
  else
    (cd "$STATE_DIR" && exec nohup "$@" >>"$logf" 2>&1 </dev/null) &
  fi
  echo $! >"$(pid_file "$name")"
}

wait_until_up() { # NAME URL
  local name=$1 url=$2
  for _ in $(seq 1 120); do
    if [ "$(http_code GET "$url")" != 000 ]; then return 0; fi
    our_pid "$name" >/dev/null || { tail -n 20 "$(log_file "$name")" >&2; die "$name exited during start-up (log: $(log_file "$name"))"; }
    sleep 0.25
  done
  tail -n 20 "$(log_file "$name")" >&2
  die "$name did not answer on $url within 30s (log: $(log_file "$name"))"
}

# start_common NAME -> returns 0 if it must be spawned, 10 if already running (ours)
start_common() {
  local name=$1 port pid
  port=$(port_of "$name")
  if pid=$(our_pid "$name"); then
    log "$name already running (pid $pid, port $port)"; return 10
  fi
  rm -f "$(pid_file "$name")"
  if port_answers "$port"; then
    die "port $HOST:$port is already in use by a process this script did not start; stop it or set ETL_$(echo "$name" | tr "[:lower:]" "[:upper:]")_PORT"
  fi
  return 0
}

start_azurite() {
  local rc=0; start_common azurite || rc=$?
  if [ $rc = 0 ]; then
    install_azurite
    # --location cannot be combined with --inMemoryPersistence; spawn runs it in $STATE_DIR.
    spawn azurite "$AZURITE_DIR/node_modules/.bin/azurite-blob" \
      --blobHost "$HOST" --blobPort "$AZURITE_PORT" \
      --inMemoryPersistence --disableTelemetry --skipApiVersionCheck
    wait_until_up azurite "http://$HOST:$AZURITE_PORT/$AZ_ACCOUNT?comp=list"
    log "azurite started (pid $(cat "$(pid_file azurite)"), log $(log_file azurite))"
  fi
  local code
  code=$(az_curl PUT "/$BUCKET?restype=container" "")
  case $code in
    201) log "azurite: container '$BUCKET' created" ;;
    409) log "azurite: container '$BUCKET' already exists" ;;
    *) cat "$STATE_DIR/azurite.last-response" >&2 2>/dev/null || true; die "azurite: creating container '$BUCKET' answered HTTP $code" ;;
  esac
  smoke_azurite || SMOKE_FAIL=1
}

start_s3() {
  local rc=0; start_common s3 || rc=$?
  if [ $rc = 0 ]; then
    install_s3
    spawn s3 "$MOTO_VENV/bin/moto_server" -H "$HOST" -p "$S3_PORT"
    wait_until_up s3 "http://$HOST:$S3_PORT/"
    log "moto started (pid $(cat "$(pid_file s3)"), log $(log_file s3))"
  fi
  local code
  code=$(s3_code HEAD "/$BUCKET" --head)
  if [ "$code" = 200 ]; then
    log "s3: bucket '$BUCKET' already exists"
  else
    code=$(s3_code PUT "/$BUCKET")
    [ "$code" = 200 ] || die "s3: creating bucket '$BUCKET' answered HTTP $code"
    log "s3: bucket '$BUCKET' created"
  fi
  smoke_s3 || SMOKE_FAIL=1
}

# Sets GCS_SKIPPED=1 (after logging SKIP) when GCS cannot be provided.
start_gcs() {
  local rc=0; start_common gcs || rc=$?
  if [ $rc = 0 ]; then
    if ! install_gcs; then GCS_SKIPPED=1; return 0; fi
    spawn gcs "$GCS_DIR/bin/fake-gcs-server" -scheme http -host "$HOST" -port "$GCS_PORT" \
      -public-host "$HOST:$GCS_PORT" -external-url "http://$HOST:$GCS_PORT" -backend memory -log-level warn
    wait_until_up gcs "http://$HOST:$GCS_PORT/storage/v1/b"
    log "fake-gcs-server started (pid $(cat "$(pid_file gcs)"), log $(log_file gcs))"
  fi
  local code
  code=$(http_code GET "http://$HOST:$GCS_PORT/storage/v1/b/$BUCKET")
  if [ "$code" = 200 ]; then
    log "gcs: bucket '$BUCKET' already exists"
  else
    code=$(http_code POST "http://$HOST:$GCS_PORT/storage/v1/b" -H 'Content-Type: application/json' \
      --data-binary "{\"name\":\"$BUCKET\"}")
    [ "$code" = 200 ] || die "gcs: creating bucket '$BUCKET' answered HTTP $code"
    log "gcs: bucket '$BUCKET' created"
  fi
  # object_store uploads with the XML API: a plain PUT /<bucket>/<object>. Refuse a build
  # that does not serve it rather than hand tests an emulator that cannot take uploads.
  local key="_emulator-check/xml-put-$$-$RANDOM" got
  code=$(http_code PUT "http://$HOST:$GCS_PORT/$BUCKET/$key" -H 'Content-Type: application/octet-stream' --data-binary hello)
  got=$(curl -s --max-time 10 "http://$HOST:$GCS_PORT/$BUCKET/$key" || true)
  http_code DELETE "http://$HOST:$GCS_PORT/$BUCKET/$key" >/dev/null
  if [ "$code" != 200 ] || [ "$got" != hello ]; then
    log "SKIP gcs: this fake-gcs-server build ($(gcs_source)) does not serve the XML API"
    log "  (PUT /$BUCKET/<key> answered HTTP $code, read back '${got:0:80}'); stopping it."
    stop_one gcs
    GCS_SKIPPED=1
    return 0
  fi
  touch "$STATE_DIR/gcs.xml-ok"
  log "gcs: XML API PUT + GET work"
  smoke_gcs || SMOKE_FAIL=1
}

stop_one() {
  local name=$1 pid
  if ! pid=$(our_pid "$name"); then
    rm -f "$(pid_file "$name")"
    log "$name not running"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    [ -d "/proc/$pid" ] || break
    sleep 0.25
  done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$(pid_file "$name")"
  [ "$name" = gcs ] && rm -f "$STATE_DIR/gcs.xml-ok"
  log "$name stopped (pid $pid)"
}

# ----------------------------------------------------------------------------- smoke checks
# Each puts the same new key twice with the provider's create-only precondition; the first must
# succeed, the second must be refused. Prints one line per emulator to stdout.
smoke_key() { echo "_emulator-check/create-only-$(date +%s%N)-$$"; }

report() { # NAME FIRST SECOND EXPECTED_SECOND_REGEX HOW
  local verdict=HONOURED
  [[ $2 =~ ^20[01]$ ]] || verdict="BROKEN (first put failed)"
  [[ $2 =~ ^20[01]$ && ! $3 =~ ^($4)$ ]] && verdict=IGNORED
  printf '%-8s create-only (%s): 1st put HTTP %s, 2nd put HTTP %s -> %s\n' "$1" "$5" "$2" "$3" "$verdict"
  [ "$verdict" = HONOURED ]
}

smoke_s3() {
  local key a b; key=$(smoke_key)
  # An explicit Content-Type: with curl's default (form-urlencoded) moto stores an empty body.
  a=$(s3_code PUT "/$BUCKET/$key" -H 'If-None-Match: *' -H 'Content-Type: application/octet-stream' --data-binary one)
  b=$(s3_code PUT "/$BUCKET/$key" -H 'If-None-Match: *' -H 'Content-Type: application/octet-stream' --data-binary two)
  s3_code DELETE "/$BUCKET/$key" >/dev/null
  report s3 "$a" "$b" 412 'If-None-Match: *'
}

smoke_azurite() {
  local key a b detail=""; key=$(smoke_key)
  a=$(az_curl PUT "/$BUCKET/$key" one 'x-ms-blob-type: BlockBlob' 'Content-Type: application/octet-stream' 'If-None-Match: *')
  b=$(az_curl PUT "/$BUCKET/$key" two 'x-ms-blob-type: BlockBlob' 'Content-Type: application/octet-stream' 'If-None-Match: *')
  detail=$(grep -o '<Code>[^<]*</Code>' "$STATE_DIR/azurite.last-response" 2>/dev/null | sed 's/<[^>]*>//g' || true)
  az_curl DELETE "/$BUCKET/$key" "" >/dev/null
  report azurite "$a" "${b}${detail:+ $detail}" '409 BlobAlreadyExists|412.*' 'If-None-Match: *'
}

smoke_gcs() {
  local key url a b; key=$(smoke_key); url="http://$HOST:$GCS_PORT/$BUCKET/$key"
  a=$(http_code PUT "$url" -H 'x-goog-if-generation-match: 0' -H 'Content-Type: application/octet-stream' --data-binary one)
  b=$(http_code PUT "$url" -H 'x-goog-if-generation-match: 0' -H 'Content-Type: application/octet-stream' --data-binary two)
  http_code DELETE "$url" >/dev/null
  report gcs "$a" "$b" 412 'x-goog-if-generation-match: 0'
}

# ----------------------------------------------------------------------------- env / status
print_env() {
  local any=0
  if our_pid azurite >/dev/null; then
    any=1
    echo "ETL_TEST_AZURITE_ENDPOINT=http://$HOST:$AZURITE_PORT/$AZ_ACCOUNT"
    echo "ETL_TEST_AZURITE_CONTAINER=$BUCKET"
    echo "ETL_TEST_AZURITE_ACCOUNT=$AZ_ACCOUNT"
    echo "ETL_TEST_AZURITE_KEY=$AZ_KEY"
    echo "AZURITE_BLOB_STORAGE_URL=http://$HOST:$AZURITE_PORT"
  else log "azurite not running: ETL_TEST_AZURITE_* not set"; fi
  if our_pid s3 >/dev/null; then
    any=1
    echo "ETL_TEST_S3_ENDPOINT=http://$HOST:$S3_PORT"
    echo "ETL_TEST_S3_BUCKET=$BUCKET"
    echo "ETL_TEST_S3_REGION=us-east-1"
    echo "ETL_TEST_S3_ACCESS_KEY_ID=test"
    echo "ETL_TEST_S3_SECRET_ACCESS_KEY=test"
  else log "s3 not running: ETL_TEST_S3_* not set"; fi
  if our_pid gcs >/dev/null && [ -f "$STATE_DIR/gcs.xml-ok" ]; then
    any=1
    echo "ETL_TEST_GCS_ENDPOINT=http://$HOST:$GCS_PORT"
    echo "ETL_TEST_GCS_BUCKET=$BUCKET"
  else log "gcs not running: ETL_TEST_GCS_* not set"; fi
  [ $any = 1 ] || log "no emulator running; start them with: $0 start"
}

status() {
  local name pid
  for name in "${TARGETS[@]}"; do
    if pid=$(our_pid "$name"); then
      printf '%-8s running  pid %-7s %s:%s\n' "$name" "$pid" "$HOST" "$(port_of "$name")"
    else
      printf '%-8s stopped\n' "$name"
    fi
  done
}

# ----------------------------------------------------------------------------- main
cmd="${1:-help}"; [ $# -gt 0 ] && shift
TARGETS=()
EXPLICIT_GCS=0
for t in "${@:-all}"; do
  case $t in
    all) TARGETS+=("${ALL[@]}") ;;
    azurite|azure) TARGETS+=(azurite) ;;
    s3|moto|aws) TARGETS+=(s3) ;;
    gcs|gcp) TARGETS+=(gcs); EXPLICIT_GCS=1 ;;
    *) usage >&2; die "unknown target '$t'" ;;
  esac
done
# de-duplicate, keep order
mapfile -t TARGETS < <(printf '%s\n' "${TARGETS[@]}" | awk '!seen[$0]++')

GCS_SKIPPED=0
SMOKE_FAIL=0
gcs_unavailable() {
  if [ $EXPLICIT_GCS = 1 ]; then exit $EXIT_UNAVAILABLE; fi
}

mkdir -p "$CACHE_ROOT"
case $cmd in
  install)
    for t in "${TARGETS[@]}"; do
      case $t in
        azurite) install_azurite ;;
        s3) install_s3 ;;
        gcs) if ! install_gcs; then gcs_unavailable; fi ;;
      esac
    done ;;
  start)
    mkdir -p "$STATE_DIR"
    for t in "${TARGETS[@]}"; do
      case $t in
        azurite) start_azurite ;;
        s3) start_s3 ;;
        gcs) start_gcs; if [ $GCS_SKIPPED = 1 ]; then gcs_unavailable; fi ;;
      esac
    done
    if [ $SMOKE_FAIL = 1 ]; then log "note: at least one emulator does not honour create-only puts (see above)"; fi ;;
  stop)
    for t in "${TARGETS[@]}"; do stop_one "$t"; done ;;
  status) status ;;
  smoke)
    for t in "${TARGETS[@]}"; do
      if ! our_pid "$t" >/dev/null; then log "$t not running"; continue; fi
      case $t in azurite) smoke_azurite || true ;; s3) smoke_s3 || true ;; gcs) smoke_gcs || true ;; esac
    done ;;
  env) print_env ;;
  help|-h|--help) usage ;;
  *) usage >&2; die "unknown command '$cmd'" ;;
esac
