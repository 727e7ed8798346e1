#!/usr/bin/env bash
# The test command: starts a real Kafka broker (scripts/kafka.sh) and the S3 (moto) and Azure
# Blob (Azurite) emulators (scripts/emulators.sh), all cached under ~/.cache/etl, runs every test
# against them, and stops what it started.
#
#   scripts/test.sh [cargo test args...]     e.g. scripts/test.sh -- raw::
#   (after `--` give at most one name filter: every target gets it, and the criterion
#   micro-benchmark, run once as a smoke test, accepts only one)
#
# Already-running parts are reused: set ETL_TEST_BROKERS to use another broker, and
# ETL_TEST_S3_* / ETL_TEST_AZURITE_* (see `scripts/emulators.sh env`) to use other stores.
set -euo pipefail
cd "$(dirname "$0")/.."

started_kafka=0
started_emulators=()
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop >/dev/null 2>&1 || true; fi
  if [ "${#started_emulators[@]}" -gt 0 ]; then scripts/emulators.sh stop "${started_emulators[@]}" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ -z "${ETL_TEST_BROKERS:-}" ]; then
  if ! scripts/kafka.sh status >/dev/null 2>&1; then
    started_kafka=1
  fi
  eval "$(scripts/kafka.sh start | grep '^KAFKA_BROKERS=')"
  export ETL_TEST_BROKERS="$KAFKA_BROKERS"
fi
echo "test.sh: Kafka at $ETL_TEST_BROKERS" >&2

# Object-store emulators (GCS has none that accepts object_store's uploads; not started).
if [ -z "${ETL_TEST_S3_ENDPOINT:-}" ] || [ -z "${ETL_TEST_AZURITE_ENDPOINT:-}" ]; then
  for e in azurite s3; do
    if ! scripts/emulators.sh status "$e" | grep -q ' running '; then started_emulators+=("$e"); fi
  done
  scripts/emulators.sh start azurite s3 >&2
  while IFS= read -r line; do
    case $line in [A-Z]*=*) export "${line?}" ;; esac
  done < <(scripts/emulators.sh env)
fi
echo "test.sh: S3 at ${ETL_TEST_S3_ENDPOINT:-?}, Azure Blob at ${ETL_TEST_AZURITE_ENDPOINT:-?}" >&2

cargo test --all-targets "$@"
