//! Integration tests: one binary, real parts. Kafka tests need a real broker at
//! `ETL_TEST_BROKERS` (started by `scripts/test.sh` / `.ci/run` via `scripts/kafka.sh`); they
//! fail, rather than skip, when it is missing.

mod common;
mod raw;
