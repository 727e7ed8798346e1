#!/usr/bin/env bash
# The test command: starts a real Kafka broker (scripts/kafka.sh, cached under ~/.cache/etl),
# runs every test against it, and stops what it started.
#
#   scripts/test.sh [cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."

started_kafka=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop >/dev/null 2>&1 || true; fi
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

cargo test --all-targets "$@"
