//! `etl`: batch ETL from Kafka topics into a layered data lake.
//!
//! ```text
//!             etl produce (test data)
//!                    │
//!   Kafka topic ─────┴──────────────────────────────────────────────┐
//!   (partitions)                                                     │ other consumer groups
//!        │ etl raw: a consumer per worker, assigned at the lake's     │ are never disturbed
//!        │ checkpoint (claims), read to the offsets seen at start     ▼
//!        ▼
//!   raw/<topic>/partition=<p>/<from>-<to>.frames.zz.enc     frames → zlib (libdeflate) →
//!   raw/<topic>/_claims/…  _gaps/…  _reports/…               AES-256-GCM chunks, key RSA-OAEP
//!        │ etl standard: decrypt, inflate, parse into Arrow columns (columnar), per service
//!        │ date: merge with the live file, dedupe, sort, flags; manifest commit (table)
//!        ▼
//!   standard/breadcrumbs/service_date=D/*.parquet  standard/rejects/  standard/_log/
//!        │ etl reduce: sample vehicles/trips, thin breadcrumbs, trip summaries
//!        ▼
//!   archive/breadcrumbs/…  archive/trips/…  archive/_log/
//!
//!   etl query (DataFusion over every layer) · etl cat / etl verify (books per partition)
//! ```
//!
//! Module map: [`envelope`] (sealing format), [`frames`] (plaintext format), [`breadcrumb`]
//! (parsing and rules) and [`columnar`] (merge of a service date) are pure; [`lake`] is the
//! object-store edge, [`kafka`] the Kafka edge; [`raw`], [`standard`], [`reduce`] and [`query`]
//! are the jobs that join them; [`table`] is the manifest commit protocol; [`verify`] reads the
//! layers back; [`cli`] turns flags/env/TOML into configs.

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
pub mod scratch;
pub mod standard;
pub mod table;
pub mod verify;

/// Number of CPUs available (at least 1).
pub fn parallelism() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Returns freed heap pages to the operating system (glibc's `malloc_trim`; elsewhere nothing).
///
/// A chunk of parsed columns is mostly buffers just under glibc's mmap threshold, allocated in
/// the heap arenas by several threads; once the chunk is spilled and dropped, the arenas keep
/// those pages, fragmented, and the next chunk lands elsewhere, so resident memory crept up
/// with every spill (`etl standard`, 5M records: 250 → 366 MiB over nine spills).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
