//! Integration tests: one binary, real parts. Kafka tests need a real broker at
//! `ETL_TEST_BROKERS` (started by `scripts/test.sh` / `.ci/run` via `scripts/kafka.sh`); they
//! fail, rather than skip, when it is missing. `backends` also needs the S3 (moto) and Azure
//! (Azurite) emulators of `scripts/emulators.sh`, found through `ETL_TEST_S3_*` / `ETL_TEST_AZURITE_*`.

mod backends;
mod cli;
mod common;
mod raw;
mod reduce_query;
mod spark;
mod standard;
