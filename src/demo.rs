//! `etl demo`: the whole pipeline on an embedded default — librdkafka's in-process mock
//! cluster instead of a broker, and a local directory as the lake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lake::Lake;
use crate::raw::{OnGap, RawConfig};

/// Marker file that says a directory was made by `etl demo` (and may be reset by it).
const MARKER: &str = ".etl-demo";
/// Topic used by the demo.
pub const TOPIC: &str = "breadcrumbs";

/// The bundled sample files (`data/` next to the binary's source, or in the working directory).
pub fn default_files() -> Vec<PathBuf> {
    let candidates = [PathBuf::from("data"), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")];
    for dir in candidates {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "csv" | "ndjson" | "jsonl")))
                .collect();
            v.sort();
            if !v.is_empty() {
                return v;
            }
        }
    }
    Vec::new()
}

/// Runs keys → produce → raw → verify on the mock cluster; prints each step to `out`.
pub async fn run(lake_dir: &Path, files: Vec<PathBuf>, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let files = if files.is_empty() { default_files() } else { files };
    anyhow::ensure!(!files.is_empty(), "no input files: give some, or run from the repository so data/ is found");
    prepare_dir(lake_dir)?;
    let keys_dir = lake_dir.join("keys");
    let (public_path, private_path) = (keys_dir.join(crate::keys::PUBLIC_FILE), keys_dir.join(crate::keys::PRIVATE_FILE));
    if !public_path.exists() || !private_path.exists() {
        writeln!(out, "== keys: generating a 3072-bit RSA key pair in {}", keys_dir.display())?;
        let key = crate::keys::generate(3072)?;
        crate::keys::write_pair(&keys_dir, &key, true)?;
    } else {
        writeln!(out, "== keys: reusing {}", keys_dir.display())?;
    }
    let public_key = crate::keys::load_public(&public_path)?;
    let private_key = Arc::new(crate::keys::load_private(&private_path)?);

    let mock = rdkafka::mocking::MockCluster::new(3)?;
    mock.create_topic(TOPIC, 3, 1)?;
    let brokers = mock.bootstrap_servers();
    writeln!(out, "== kafka: in-process mock cluster at {brokers}, topic {TOPIC:?} with 3 partitions")?;

    let mut sent = 0;
    for f in &files {
        let records = crate::produce::read_records(f)?;
        let n = {
            let (b, r) = (brokers.clone(), records);
            tokio::task::spawn_blocking(move || crate::kafka::send(&b, TOPIC, &r, std::time::Duration::from_secs(30))).await??
        };
        writeln!(out, "== produce: {n} messages from {}", f.display())?;
        sent += n;
    }

    let lake_url = lake_dir.canonicalize()?.to_string_lossy().into_owned();
    let lake = Lake::open(&lake_url)?;
    let cfg = RawConfig {
        brokers: brokers.clone(),
        topic: TOPIC.into(),
        group_id: "etl-raw".into(),
        public_key,
        max_records: None,
        object_records: 5_000,
        object_bytes: 32 << 20,
        zlib_level: crate::raw::DEFAULT_ZLIB_LEVEL,
        on_gap: OnGap::Fail,
        idle_timeout: std::time::Duration::from_secs(30),
        commit_offsets: true,
        workers: crate::parallelism(),
        kafka_props: Vec::new(),
        shard: None,
    };
    let report = crate::raw::run(cfg, lake.clone()).await?;
    write!(out, "== raw:\n{}", report.summary())?;
    anyhow::ensure!(!report.failed(), "raw run failed");
    anyhow::ensure!(report.records == sent, "raw landed {} of {sent} messages", report.records);

    let std_report = crate::standard::run(&crate::standard::StandardConfig::new(private_key.clone()), &lake).await?;
    write!(out, "== standard:\n{}", std_report.summary())?;
    anyhow::ensure!(std_report.errors.is_empty(), "standard failed on {} raw objects", std_report.errors.len());

    let mut v = crate::verify::verify(&lake, private_key, Some(TOPIC)).await?;
    if let Some(rec) = crate::verify::reconcile_standard(&lake).await? {
        v.errors.extend(rec.errors.iter().cloned());
        v.standard = Some(rec);
    }
    write!(out, "== verify:\n{}", v.summary())?;
    anyhow::ensure!(v.errors.is_empty(), "verify found {} problems", v.errors.len());

    let reduced = crate::reduce::run(&lake, &crate::reduce::Policy::default(), false).await?;
    write!(out, "== reduce (trip summaries, one breadcrumb per 30 s per trip):\n{}", reduced.summary())?;

    for name in ["trips_per_vehicle_day", "quality_summary", "longest_trips"] {
        let sql = crate::query::named_query(name)?;
        let batches = crate::query::query(&lake, &sql).await?;
        writeln!(out, "== query sql/{name}.sql:")?;
        crate::query::print_batches(&batches, crate::query::OutputFormat::Table, out)?;
    }
    writeln!(
        out,
        "== done: lake at {lake_url}\n   try: etl cat --lake {lake_url} --private-key {} raw/{TOPIC}/partition=0/ | head\n        etl query --lake {lake_url} \"select * from trips limit 5\"",
        private_path.display()
    )?;
    drop(mock);
    Ok(())
}

/// Creates the demo directory, or resets the layers of one a previous demo made. The mock
/// cluster starts empty every time, so old checkpoints would not match its offsets.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_demo = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)?.next().is_none();
        anyhow::ensure!(is_demo || empty, "{} exists and was not made by `etl demo`; choose another --lake", dir.display());
        for layer in ["raw", "standard", "archive"] {
            let p = dir.join(layer);
            if p.exists() {
                std::fs::remove_dir_all(&p)?;
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "made by `etl demo`; its layers are reset on every demo run\n")?;
    Ok(())
}
