//! Command line: clap definitions, and their resolution (flags > `ETL_*` env > `etl.toml` >
//! defaults) into validated configs before any I/O happens.

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::raw::{OnGap, RawConfig};

/// Batch ETL from Kafka into an encrypted, layered data lake.
#[derive(Debug, Parser)]
#[command(name = "etl", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./etl.toml when it exists.
    #[arg(long, global = true, env = "ETL_CONFIG")]
    pub config: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where the raw layer lives, when not at --lake (e.g. its own bucket: gs://acme-etl-raw).
    #[arg(long, global = true, env = "ETL_RAW_LAKE")]
    pub raw_lake: Option<String>,
    /// Where the standard layer lives, when not at --lake.
    #[arg(long, global = true, env = "ETL_STANDARD_LAKE")]
    pub standard_lake: Option<String>,
    /// Where the archive layer lives, when not at --lake.
    #[arg(long, global = true, env = "ETL_ARCHIVE_LAKE")]
    pub archive_lake: Option<String>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage RSA key pairs.
    Keys {
        /// Key action.
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Publish records from JSON-array, NDJSON or CSV files, one message per record.
    Produce(ProduceArgs),
    /// Land one bounded batch of a topic as sealed raw objects (exactly once).
    Raw(RawArgs),
    /// Convert raw objects into validated, typed Parquet (breadcrumbs + rejects).
    Standard(StandardArgs),
    /// Reduce the standard layer into the archival layer (sampling, thinning, trip summaries).
    Reduce(ReduceArgs),
    /// Run SQL over every layer of the lake (DataFusion).
    Query(QueryArgs),
    /// Decrypt raw objects to NDJSON on stdout.
    Cat(CatArgs),
    /// Check every raw object decrypts, authenticates and that offsets are contiguous.
    Verify(VerifyArgs),
    /// Run the whole pipeline on an embedded Kafka mock cluster and a local lake.
    Demo(DemoArgs),
}

/// `etl keys` actions.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new key pair: DIR/etl-public.pem and DIR/etl-private.pem (mode 0600).
    Generate {
        /// Directory for the key files.
        #[arg(long)]
        dir: PathBuf,
        /// RSA modulus size.
        #[arg(long, default_value_t = 3072)]
        bits: usize,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
}

/// Output format of reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable summary.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Kafka connection flags.
#[derive(Debug, Args, Clone)]
pub struct KafkaArgs {
    /// Bootstrap servers (host:port,...).
    #[arg(long, env = "ETL_BROKERS")]
    pub brokers: Option<String>,
    /// Topic.
    #[arg(long, env = "ETL_TOPIC")]
    pub topic: Option<String>,
}

/// `etl produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub create_partitions: Option<i32>,
    /// Input files (.json array, .ndjson/.jsonl lines, .csv with header).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `etl raw`.
#[derive(Debug, Args)]
pub struct RawArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Lake URL: a directory, file:///dir, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// RSA public key (PEM) objects are sealed for. The private key is never needed here.
    #[arg(long, env = "ETL_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,
    /// Consumer group the landed offsets are committed to (lag monitoring only; the lake is the
    /// source of truth). Default: etl-raw.
    #[arg(long, env = "ETL_GROUP_ID")]
    pub group_id: Option<String>,
    /// At most this many records per partition in this run (default: up to the end offset seen at start).
    #[arg(long, env = "ETL_MAX_RECORDS")]
    pub max_records: Option<u64>,
    /// Cut an object after this many records. Default 1000000.
    #[arg(long, env = "ETL_OBJECT_RECORDS")]
    pub object_records: Option<u64>,
    /// Cut an object after this many uncompressed bytes. Default 32 MiB (held in memory per worker until sealed).
    #[arg(long, env = "ETL_OBJECT_BYTES")]
    pub object_bytes: Option<u64>,
    /// zlib level 0-9. Default 5 (libdeflate: smaller than zlib's 6, ~1.3× faster than its own 6).
    #[arg(long, env = "ETL_ZLIB_LEVEL")]
    pub zlib_level: Option<u32>,
    /// Retention gap policy: fail (default) or skip (record it and continue).
    #[arg(long, env = "ETL_ON_GAP")]
    pub on_gap: Option<OnGap>,
    /// Seconds without any message before a partition is declared stalled. Default 60.
    #[arg(long, env = "ETL_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Do not commit landed offsets to the consumer group.
    #[arg(long)]
    pub no_commit: bool,
    /// Partitions processed in parallel. Default: number of CPUs + 1 (one reads while another seals).
    #[arg(long, env = "ETL_WORKERS")]
    pub workers: Option<usize>,
    /// Several workers sharing one topic: this one lands partitions p with p % COUNT == INDEX.
    /// Defaults to Cloud Run's CLOUD_RUN_TASK_INDEX when --shard-count (or CLOUD_RUN_TASK_COUNT) > 1.
    #[arg(long, env = "ETL_SHARD_INDEX")]
    pub shard_index: Option<u32>,
    /// Number of workers sharing the topic (see --shard-index).
    #[arg(long, env = "ETL_SHARD_COUNT")]
    pub shard_count: Option<u32>,
    /// Extra librdkafka consumer property, e.g. -X fetch.wait.max.ms=50 (repeatable).
    #[arg(short = 'X', value_parser = parse_kv)]
    pub kafka_prop: Vec<(String, String)>,
    /// Output format of the run report.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `etl standard`.
#[derive(Debug, Args)]
pub struct StandardArgs {
    /// Lake URL.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// RSA private key (PEM) to open raw objects.
    #[arg(long, env = "ETL_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// Only this topic's raw objects (default: every topic in the lake).
    #[arg(long, env = "ETL_TOPIC")]
    pub topic: Option<String>,
    /// At most this many raw objects in this run.
    #[arg(long)]
    pub max_objects: Option<usize>,
    /// zstd level of the Parquet files (1-22). Default 3.
    #[arg(long)]
    pub zstd_level: Option<i32>,
    /// Rows per Parquet row group (default 131072; smaller = finer pruning, larger files).
    #[arg(long)]
    pub row_group_rows: Option<usize>,
    /// New rows held in memory before they are spilled to local scratch files (Arrow IPC under
    /// $ETL_SPILL_DIR, default the system temp dir; default 250000 rows ≈ 35 MB; bounds memory).
    #[arg(long)]
    pub chunk_rows: Option<usize>,
    /// Output format of the run report.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `etl reduce`.
#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Lake URL.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// Keep this fraction of vehicles (0..1], chosen by a stable hash of the vehicle id and --seed.
    #[arg(long)]
    pub vehicle_fraction: Option<f64>,
    /// Keep this fraction of trips (0..1], chosen by a stable hash of the trip id and --seed.
    #[arg(long)]
    pub trip_fraction: Option<f64>,
    /// Seed of the sampling hash (same seed → same vehicles and trips every day).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep only these vehicles (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub vehicles: Option<Vec<i64>>,
    /// Keep only these trips (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub trips: Option<Vec<i64>>,
    /// Thin to one breadcrumb per N seconds per trip (first and last kept). Default 30.
    #[arg(long, conflicts_with_all = ["simplify_meters", "no_thin"])]
    pub thin_seconds: Option<u32>,
    /// Thin by path simplification (Douglas–Peucker) with this tolerance in metres.
    #[arg(long, conflicts_with = "no_thin")]
    pub simplify_meters: Option<f64>,
    /// Keep every breadcrumb of the kept trips.
    #[arg(long)]
    pub no_thin: bool,
    /// Do not write trip summaries.
    #[arg(long)]
    pub no_summaries: bool,
    /// Only archive service dates at least N days old (the rest stays in standard).
    #[arg(long)]
    pub older_than_days: Option<u32>,
    /// Reference date for --older-than-days (default: today, UTC).
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// zstd level of archive files. Default 19.
    #[arg(long)]
    pub zstd_level: Option<i32>,
    /// Print the report without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `[reduce]` section of etl.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceFileConfig {
    /// Fraction of vehicles.
    pub vehicle_fraction: Option<f64>,
    /// Fraction of trips.
    pub trip_fraction: Option<f64>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Vehicles to keep.
    pub vehicles: Option<Vec<i64>>,
    /// Trips to keep.
    pub trips: Option<Vec<i64>>,
    /// One breadcrumb per N seconds.
    pub thin_seconds: Option<u32>,
    /// Douglas–Peucker tolerance (m).
    pub simplify_meters: Option<f64>,
    /// Keep every breadcrumb.
    pub no_thin: Option<bool>,
    /// Write trip summaries.
    pub summaries: Option<bool>,
    /// Minimum age in days.
    pub older_than_days: Option<u32>,
    /// zstd level.
    pub zstd_level: Option<i32>,
}

impl ReduceArgs {
    /// Resolves flags and file into a policy plus the lake URL.
    pub fn resolve(self, file: &FileConfig) -> Result<(crate::reduce::Policy, Option<String>, bool), ConfigError> {
        use crate::reduce::{Policy, Thin};
        let lake = self.lake.or_else(|| file.lake.clone());
        let r = &file.reduce;
        let mut p = Policy::default();
        p.vehicle_fraction = self.vehicle_fraction.or(r.vehicle_fraction);
        p.trip_fraction = self.trip_fraction.or(r.trip_fraction);
        for (what, f) in [("--vehicle-fraction", p.vehicle_fraction), ("--trip-fraction", p.trip_fraction)] {
            if f.is_some_and(|f| !(f > 0.0 && f <= 1.0)) {
                return Err(ConfigError::Invalid { what: if what == "--vehicle-fraction" { "--vehicle-fraction" } else { "--trip-fraction" }, reason: "must be in (0, 1]".into() });
            }
        }
        p.seed = self.seed.or(r.seed).unwrap_or(0);
        p.vehicles = self.vehicles.or_else(|| r.vehicles.clone());
        p.trips = self.trips.or_else(|| r.trips.clone());
        p.thin = if self.no_thin || (self.thin_seconds.is_none() && self.simplify_meters.is_none() && r.no_thin == Some(true)) {
            Thin::None
        } else if let Some(m) = self.simplify_meters.or(if self.thin_seconds.is_none() { r.simplify_meters } else { None }) {
            if !(m > 0.0) {
                return Err(ConfigError::Invalid { what: "--simplify-meters", reason: "must be > 0".into() });
            }
            Thin::SimplifyMeters(m)
        } else {
            let s = self.thin_seconds.or(r.thin_seconds).unwrap_or(30);
            if s == 0 {
                return Err(ConfigError::Invalid { what: "--thin-seconds", reason: "must be > 0 (use --no-thin to keep everything)".into() });
            }
            Thin::EverySeconds(s)
        };
        p.summaries = !self.no_summaries && r.summaries.unwrap_or(true);
        p.older_than_days = self.older_than_days.or(r.older_than_days);
        p.as_of = self.as_of;
        p.zstd_level = self.zstd_level.or(r.zstd_level).unwrap_or(19);
        if !(1..=22).contains(&p.zstd_level) {
            return Err(ConfigError::Invalid { what: "zstd level", reason: format!("{} (use 1-22)", p.zstd_level) });
        }
        Ok((p, lake, self.dry_run))
    }
}

/// `etl query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Lake URL.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// SQL to run (several statements separated by `;` run in order; the last one is printed).
    #[arg(conflicts_with_all = ["file", "name"])]
    pub sql: Option<String>,
    /// Read the SQL from this file.
    #[arg(short = 'f', long = "file", conflicts_with = "name")]
    pub file: Option<PathBuf>,
    /// Run a named query from sql/ (e.g. `trips_per_vehicle_day`).
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// List the tables and named queries, then exit.
    #[arg(long)]
    pub list: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::query::OutputFormat,
    /// Write the result to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `etl cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Lake URL.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// RSA private key (PEM).
    #[arg(long, env = "ETL_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// An object key, or a prefix such as `raw/<topic>/partition=0/` (or just `<topic>`).
    pub target: String,
}

/// `etl verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Lake URL.
    #[arg(long, env = "ETL_LAKE")]
    pub lake: Option<String>,
    /// RSA private key (PEM).
    #[arg(long, env = "ETL_PRIVATE_KEY")]
    pub private_key: Option<PathBuf>,
    /// Only this topic (default: every topic in the lake).
    #[arg(long, env = "ETL_TOPIC")]
    pub topic: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `etl demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Lake directory (created; keys are kept in DIR/keys/). Default ./etl-demo-lake.
    #[arg(long, default_value = "etl-demo-lake")]
    pub lake: PathBuf,
    /// Input files (default: the bundled samples in data/).
    pub files: Vec<PathBuf>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Errors resolving configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Config file unreadable or invalid.
    #[error("config file {path}: {reason}")]
    File {
        /// File path.
        path: PathBuf,
        /// Problem.
        reason: String,
    },
    /// A required setting is missing everywhere.
    #[error("missing {flag} (or {env}, or `{toml}` in etl.toml)")]
    Missing {
        /// Flag name.
        flag: &'static str,
        /// Env var name.
        env: &'static str,
        /// TOML key.
        toml: &'static str,
    },
    /// A value is out of range.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Setting.
        what: &'static str,
        /// Problem.
        reason: String,
    },
    /// Key file problem.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

/// The optional `etl.toml`. Every field may also be given as a flag or `ETL_*` variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Kafka bootstrap servers.
    pub brokers: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Lake URL.
    pub lake: Option<String>,
    /// Public key path.
    pub public_key: Option<PathBuf>,
    /// Private key path.
    pub private_key: Option<PathBuf>,
    /// Store of the raw layer, when not at `lake`.
    pub raw_lake: Option<String>,
    /// Store of the standard layer, when not at `lake`.
    pub standard_lake: Option<String>,
    /// Store of the archive layer, when not at `lake`.
    pub archive_lake: Option<String>,
    /// `[raw]` section.
    #[serde(default)]
    pub raw: RawFileConfig,
    /// `[standard]` section.
    #[serde(default)]
    pub standard: StandardFileConfig,
    /// `[reduce]` section.
    #[serde(default)]
    pub reduce: ReduceFileConfig,
}

/// `[standard]` section of etl.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardFileConfig {
    /// Raw objects per run.
    pub max_objects: Option<usize>,
    /// zstd level.
    pub zstd_level: Option<i32>,
    /// Rows per Parquet row group.
    pub row_group_rows: Option<usize>,
}

/// `[raw]` section of etl.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileConfig {
    /// Consumer group.
    pub group_id: Option<String>,
    /// Records per partition per run.
    pub max_records: Option<u64>,
    /// Records per object.
    pub object_records: Option<u64>,
    /// Plaintext bytes per object.
    pub object_bytes: Option<u64>,
    /// zlib level.
    pub zlib_level: Option<u32>,
    /// Gap policy.
    pub on_gap: Option<OnGap>,
    /// Idle timeout seconds.
    pub idle_timeout: Option<u64>,
    /// Worker threads.
    pub workers: Option<usize>,
    /// Extra librdkafka properties.
    #[serde(default)]
    pub kafka: std::collections::BTreeMap<String, String>,
}

impl FileConfig {
    /// Loads `path`, or ./etl.toml if it exists, or an empty config.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new("etl.toml").exists() => PathBuf::from("etl.toml"),
            None => return Ok(Self::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File { path: path.clone(), reason: e.to_string() })?;
        toml::from_str(&text).map_err(|e| ConfigError::File { path, reason: e.to_string() })
    }
}

/// Per-layer store URLs from flags/env, falling back to etl.toml.
#[derive(Debug, Clone, Default)]
pub struct LayerUrls {
    /// raw, standard, archive overrides.
    pub urls: Vec<(&'static str, String)>,
}

impl LayerUrls {
    /// Collects the overrides given on the command line or in the file.
    pub fn new(cli: &Cli, file: &FileConfig) -> Self {
        let mut urls = Vec::new();
        for (layer, flag, toml) in [
            ("raw", &cli.raw_lake, &file.raw_lake),
            ("standard", &cli.standard_lake, &file.standard_lake),
            ("archive", &cli.archive_lake, &file.archive_lake),
        ] {
            if let Some(u) = flag.clone().or_else(|| toml.clone()) {
                urls.push((layer, u));
            }
        }
        Self { urls }
    }

    /// Opens the lake: `lake` (or, without it, the first layer URL given) plus the overrides.
    pub fn open(&self, lake: Option<String>) -> Result<crate::lake::Lake, ConfigError> {
        let default = lake.or_else(|| self.urls.first().map(|(_, u)| u.clone()));
        let default = required(default, "--lake", "ETL_LAKE", "lake")?;
        crate::lake::Lake::open_layers(&default, &self.urls).map_err(|e| ConfigError::Invalid { what: "lake", reason: e.to_string() })
    }
}

/// Picks the first value present, or reports which setting is missing.
pub fn required<T>(v: Option<T>, flag: &'static str, env: &'static str, toml: &'static str) -> Result<T, ConfigError> {
    v.ok_or(ConfigError::Missing { flag, env, toml })
}

impl RawArgs {
    /// Resolves flags, env and file into a validated [`RawConfig`] plus the lake URL.
    pub fn resolve(self, file: &FileConfig) -> Result<(RawConfig, Option<String>), ConfigError> {
        let brokers = required(self.kafka.brokers.or_else(|| file.brokers.clone()), "--brokers", "ETL_BROKERS", "brokers")?;
        let topic = required(self.kafka.topic.or_else(|| file.topic.clone()), "--topic", "ETL_TOPIC", "topic")?;
        let lake = self.lake.or_else(|| file.lake.clone());
        let key_path = required(self.public_key.or_else(|| file.public_key.clone()), "--public-key", "ETL_PUBLIC_KEY", "public_key")?;
        let r = &file.raw;
        let zlib_level = self.zlib_level.or(r.zlib_level).unwrap_or(crate::raw::DEFAULT_ZLIB_LEVEL);
        if zlib_level > 9 {
            return Err(ConfigError::Invalid { what: "zlib level", reason: format!("{zlib_level} (use 0-9)") });
        }
        let object_records = self.object_records.or(r.object_records).unwrap_or(1_000_000);
        let object_bytes = self.object_bytes.or(r.object_bytes).unwrap_or(32 << 20);
        if object_records == 0 || object_bytes == 0 {
            return Err(ConfigError::Invalid { what: "object size", reason: "object records and bytes must be > 0".into() });
        }
        if self.max_records == Some(0) {
            return Err(ConfigError::Invalid { what: "--max-records", reason: "must be > 0".into() });
        }
        let mut kafka_props: Vec<(String, String)> = r.kafka.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        kafka_props.extend(self.kafka_prop);
        let cloud_run = |v: &str| std::env::var(v).ok().and_then(|x| x.parse::<u32>().ok());
        let count = self.shard_count.or_else(|| cloud_run("CLOUD_RUN_TASK_COUNT"));
        let shard = match count {
            None | Some(1) => None,
            Some(0) => return Err(ConfigError::Invalid { what: "--shard-count", reason: "must be ≥ 1".into() }),
            Some(n) => {
                let i = self.shard_index.or_else(|| cloud_run("CLOUD_RUN_TASK_INDEX")).unwrap_or(0);
                if i >= n {
                    return Err(ConfigError::Invalid { what: "--shard-index", reason: format!("{i} must be below --shard-count {n}") });
                }
                Some((i, n))
            }
        };
        let public_key = crate::keys::load_public(&key_path)?;
        Ok((
            RawConfig {
                brokers,
                topic,
                group_id: self.group_id.or_else(|| r.group_id.clone()).unwrap_or_else(|| "etl-raw".into()),
                public_key,
                max_records: self.max_records.or(r.max_records),
                object_records,
                object_bytes,
                zlib_level,
                on_gap: self.on_gap.or(r.on_gap).unwrap_or(OnGap::Fail),
                idle_timeout: Duration::from_secs(self.idle_timeout.or(r.idle_timeout).unwrap_or(60).max(1)),
                commit_offsets: !self.no_commit,
                workers: self.workers.or(r.workers).unwrap_or_else(|| crate::parallelism() + 1).max(1),
                kafka_props,
                shard,
            },
            lake,
        ))
    }
}

impl StandardArgs {
    /// Resolves flags, env and file into a [`crate::standard::StandardConfig`] plus the lake URL.
    pub fn resolve(self, file: &FileConfig) -> Result<(crate::standard::StandardConfig, Option<String>), ConfigError> {
        let lake = self.lake.or_else(|| file.lake.clone());
        let key_path = required(self.private_key.or_else(|| file.private_key.clone()), "--private-key", "ETL_PRIVATE_KEY", "private_key")?;
        let zstd_level = self.zstd_level.or(file.standard.zstd_level).unwrap_or(3);
        if !(1..=22).contains(&zstd_level) {
            return Err(ConfigError::Invalid { what: "zstd level", reason: format!("{zstd_level} (use 1-22)") });
        }
        let key = crate::keys::load_private(&key_path)?;
        let mut cfg = crate::standard::StandardConfig::new(std::sync::Arc::new(key));
        cfg.topic = self.topic.or_else(|| file.topic.clone());
        cfg.max_objects = self.max_objects.or(file.standard.max_objects);
        cfg.zstd_level = zstd_level;
        if let Some(n) = self.chunk_rows {
            cfg.chunk_rows = n.max(1);
        }
        if let Some(n) = self.row_group_rows.or(file.standard.row_group_rows) {
            if n == 0 {
                return Err(ConfigError::Invalid { what: "--row-group-rows", reason: "must be > 0".into() });
            }
            cfg.row_group_rows = n;
        }
        Ok((cfg, lake))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kv_parser() {
        assert_eq!(parse_kv("a.b=c=d").unwrap(), ("a.b".into(), "c=d".into()));
        assert!(parse_kv("nokey").is_err());
        assert!(parse_kv("=v").is_err());
    }

    #[test]
    fn file_config_fills_gaps_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = crate::keys::test_keypair();
        let (pubp, _) = crate::keys::write_pair(dir.path(), &key, false).unwrap();
        let toml_path = dir.path().join("etl.toml");
        std::fs::write(
            &toml_path,
            format!("brokers = \"b1:9092\"\ntopic = \"t\"\nlake = \"/tmp/x\"\npublic_key = \"{}\"\n[raw]\nzlib_level = 3\nobject_records = 10\n", pubp.display()),
        )
        .unwrap();
        let file = FileConfig::load(Some(&toml_path)).unwrap();
        let cli = Cli::try_parse_from(["etl", "raw", "--brokers", "flag:1", "--object-records", "5"]).unwrap();
        let Command::Raw(args) = cli.command else { panic!() };
        let (cfg, lake) = args.resolve(&file).unwrap();
        assert_eq!(cfg.brokers, "flag:1");
        assert_eq!(cfg.topic, "t");
        assert_eq!(lake.as_deref(), Some("/tmp/x"));
        assert_eq!(cfg.zlib_level, 3);
        assert_eq!(cfg.object_records, 5);
        assert_eq!(cfg.group_id, "etl-raw");
        assert_eq!(cfg.on_gap, OnGap::Fail);
    }

    #[test]
    fn missing_and_invalid_settings_are_named() {
        let cli = Cli::try_parse_from(["etl", "raw", "--topic", "t"]).unwrap();
        let Command::Raw(args) = cli.command else { panic!() };
        let e = args.resolve(&FileConfig::default()).unwrap_err().to_string();
        assert!(e.contains("--brokers") && e.contains("ETL_BROKERS"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "nonsense_key = 1\n").unwrap();
        let e = FileConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("nonsense_key"), "{e}");
    }
}
