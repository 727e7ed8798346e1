//! `etl`: batch ETL from Kafka topics into a layered data lake.
//!
//! ```text
//!             etl produce (test data)
//!                    │
//!   Kafka topic ─────┴──────────────────────────────────────────────┐
//!   (partitions)                                                     │ other consumer groups
//!        │ etl raw: seek from the lake's claims, read to the end      │ are never disturbed
//!        │ offsets seen at start, frame messages verbatim             ▼
//!        ▼
//!   raw/<topic>/partition=<p>/<from>-<to>.frames.zz.enc     zlib → AES-256-GCM chunks,
//!   raw/<topic>/_claims/…  _gaps/…  _reports/…               data key RSA-OAEP wrapped
//!        │ etl cat / etl verify (private key)
//!        ▼
//!   stdout NDJSON, verification report
//! ```
//!
//! Module map: [`envelope`] (sealing format) and [`frames`] (plaintext format) are pure;
//! [`lake`] is the object-store edge, [`kafka`] the Kafka edge; [`raw`] is the job that joins
//! them; [`verify`] reads the layer back; [`cli`] turns flags/env/TOML into configs.

#![warn(missing_docs)]

pub mod breadcrumb;
pub mod cli;
pub mod columnar;
pub mod demo;
pub mod envelope;
pub mod fault;
pub mod frames;
pub mod kafka;
pub mod keys;
pub mod lake;
pub mod produce;
pub mod query;
pub mod raw;
pub mod reduce;
pub mod standard;
pub mod table;
pub mod verify;

/// Number of CPUs available (at least 1).
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
