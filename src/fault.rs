//! Crash points for tests: `ETL_FAULT_POINT=<name>:<n>` makes the process announce
//! `ETL-FAULT-POINT <name>` on stderr at the n-th time it reaches that point and then hang, so
//! a test can SIGKILL it exactly there. Unset (always, in production) it costs one atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn spec() -> &'static Option<(String, u64)> {
    SPEC.get_or_init(|| {
        let v = std::env::var("ETL_FAULT_POINT").ok()?;
        let (name, n) = v.split_once(':').unwrap_or((&v, "1"));
        Some((name.to_string(), n.parse().unwrap_or(1)))
    })
}

/// Marks a crash point named `name`.
pub fn point(name: &str) {
    if let Some((want, n)) = spec() {
        if want == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("ETL-FAULT-POINT {name}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
