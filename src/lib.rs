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

/// Returns freed heap pages to the operating system (glibc's `malloc_trim`; elsewhere nothing)
/// once resident memory is above [`TRIM_ABOVE`].
///
/// A chunk of parsed columns is mostly buffers just under glibc's mmap threshold, allocated in
/// the heap arenas by several threads; once the chunk is spilled and dropped, the arenas keep
/// those pages, fragmented, and the next chunk lands elsewhere, so resident memory crept up
/// with every spill (`etl standard`, 5M records: 250 → 366 MiB over nine spills). Trimming
/// after every spill and every merged date kept it flat, but every page handed back is a page
/// fault when memory is taken again; with the column buffers and spill reads now reused, an
/// untrimmed run stays near 300 MiB (5M records 297 MiB, 15M 312 MiB), and trimming it anyway
/// cost 48k page faults at 5M, 258k at 15M (−35%). So it trims only above the bound.
pub fn release_free_memory() {
    if resident_bytes().is_some_and(|r| r <= TRIM_ABOVE) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resident memory above which [`release_free_memory`] hands free pages back.
pub const TRIM_ABOVE: u64 = 384 << 20;

/// This process's resident memory (Linux: `/proc/self/statm`), or `None` where unknown.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    #[cfg(not(unix))]
    let page = 4096;
    Some(pages * page)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_counts_touched_pages() {
        let r = super::resident_bytes().expect("Linux reports resident memory");
        assert!(r > 1 << 20, "{r} bytes resident");
        // 96 MiB written is 96 MiB resident, whatever other tests free meanwhile.
        let big = vec![1u8; 96 << 20];
        let touched = super::resident_bytes().unwrap();
        assert!(touched >= 96 << 20, "{touched} bytes resident with 96 MiB touched");
        assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 96 << 20);
    }
}
