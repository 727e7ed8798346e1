//! `etl raw`: one bounded run that lands Kafka messages as sealed raw objects, exactly once.
//!
//! ```text
//!  plan (per partition)                          land (one worker thread per partition, ≤ cores)
//!  ───────────────────                           ───────────────────────────────────────────────
//!  list _claims/ → next = last claim.to + 1      seek(from) ─► poll partition queue
//!  claims without object → repair spans              │ frame verbatim ─► zlib ─► AES-GCM chunks
//!  watermarks (low, high) at start                   ▼ cut by records / bytes (never by clock)
//!  next < low  → retention gap (fail | skip)     create claim  _claims/<from>.json  {from,to}
//!  end = min(high, next + max_records)               │ exists with another range? adopt it:
//!                                                    │ seek(to+1) and continue from there
//!                                                create object <from>-<to>.frames.zz.enc
//!                                                commit offset to+1 to the group (for lag tools)
//! ```
//!
//! The lake, not the consumer group, is the source of truth: the chain of create-only claims,
//! each starting where the previous ended, says which offsets have landed. Two runs racing on
//! the same partition collide on the claim key of the same `from` offset, so one wins and the
//! other adopts its range; a run killed between claim and object leaves a claim whose object the
//! next run re-reads from Kafka and writes (repair). Nothing a reader lists is ever partial:
//! every object is a single create-only put.

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::envelope::{Sealed, Sealer};
use crate::frames::{self, Frame};
use crate::kafka::{client_config, partitions, BatchReader, KafkaEdgeError, Polled};
use crate::lake::{raw_keys, Created, Lake, LakeError};

/// Errors of a raw run (per partition errors are collected in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// Kafka could not be reached or the topic is missing.
    #[error(transparent)]
    Kafka(#[from] KafkaEdgeError),
    /// The lake could not be read or written.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Something failed inside one partition.
    #[error("partition {partition} at offset {offset}: {reason}")]
    Partition {
        /// Partition.
        partition: i32,
        /// Offset where it happened.
        offset: i64,
        /// What happened.
        reason: String,
    },
}

/// What to do when the lake's checkpoint is older than the oldest offset Kafka still has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnGap {
    /// Record the gap and fail the partition (default): someone should look.
    Fail,
    /// Record the gap, move the checkpoint past it, and continue.
    Skip,
}

/// zlib level raw objects are written at unless told otherwise. libdeflate's level 5 on breadcrumb
/// JSON is ~1.3× the speed of its level 6 for ~5% more bytes, and still ~8% smaller than zlib's
/// own level 6 (what a Python archiver writes); see BENCHMARKS.md.
pub const DEFAULT_ZLIB_LEVEL: u32 = 5;

/// Validated settings of a raw run.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topic to archive.
    pub topic: String,
    /// Consumer group offsets are committed to (for lag monitoring only).
    pub group_id: String,
    /// Public key objects are sealed for.
    pub public_key: RsaPublicKey,
    /// At most this many records per partition in this run.
    pub max_records: Option<u64>,
    /// Cut an object after this many records.
    pub object_records: u64,
    /// Cut an object after this many plaintext bytes.
    pub object_bytes: u64,
    /// zlib level 0..=9 (default [`DEFAULT_ZLIB_LEVEL`]).
    pub zlib_level: u32,
    /// Retention-gap policy.
    pub on_gap: OnGap,
    /// Fail a partition when no message arrives for this long before its end offset.
    pub idle_timeout: Duration,
    /// Commit landed offsets to the consumer group.
    pub commit_offsets: bool,
    /// Worker threads (partitions processed in parallel).
    pub workers: usize,
    /// Extra librdkafka properties (`key=value`).
    pub kafka_props: Vec<(String, String)>,
    /// This worker lands only partitions `p` with `p % count == index`: (index, count).
    pub shard: Option<(u32, u32)>,
}

/// A claim: the create-only record that offsets `from..=to` of a partition are taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claim {
    /// First offset covered.
    pub from: i64,
    /// Last offset covered (inclusive).
    pub to: i64,
    /// `data` (an object holds these offsets) or `gap` (lost to retention).
    pub kind: ClaimKind,
    /// Records in the object (0 for gaps).
    pub records: u64,
    /// Data object key (data claims).
    pub object: Option<String>,
    /// Run that made the claim.
    pub run_id: String,
    /// When (UTC, RFC 3339).
    pub created_at: String,
}

/// Kind of claim.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClaimKind {
    /// Offsets stored in a data object.
    Data,
    /// Offsets no longer available in Kafka when the lake got to them.
    Gap,
}

/// A retention gap record (`_gaps/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GapRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First missing offset.
    pub from: i64,
    /// Last missing offset.
    pub to: i64,
    /// Kafka's low watermark when seen.
    pub low_watermark: i64,
    /// `fail` or `skip`.
    pub action: OnGap,
    /// Run that saw it.
    pub run_id: String,
    /// When (UTC).
    pub seen_at: String,
}

/// Per-partition figures of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PartitionReport {
    /// Partition id.
    pub partition: i32,
    /// Kafka's low watermark at start.
    pub low_watermark: i64,
    /// Kafka's high watermark at start.
    pub high_watermark: i64,
    /// Offset this run started from (lake checkpoint).
    pub start_offset: i64,
    /// Offset this run stopped before (exclusive).
    pub end_offset: i64,
    /// First offset read.
    pub first_offset: Option<i64>,
    /// Last offset landed.
    pub last_offset: Option<i64>,
    /// Records landed by this run.
    pub records: u64,
    /// Message bytes (key + payload).
    pub message_bytes: u64,
    /// Framed plaintext bytes.
    pub plaintext_bytes: u64,
    /// Bytes after zlib.
    pub compressed_bytes: u64,
    /// Bytes written (sealed objects).
    pub encrypted_bytes: u64,
    /// plaintext / compressed.
    pub compression_ratio: f64,
    /// Objects this run created.
    pub objects_written: u64,
    /// Ranges another run had already claimed (skipped here).
    pub ranges_adopted: u64,
    /// Claimed ranges whose object was missing and that this run wrote.
    pub objects_repaired: u64,
    /// Retention gap seen, if any.
    pub gap: Option<(i64, i64)>,
    /// Error, if the partition failed.
    pub error: Option<String>,
}

/// The report of a run, printed and stored in the lake as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawReport {
    /// Random id of this run.
    pub run_id: String,
    /// Topic.
    pub topic: String,
    /// Lake URL.
    pub lake: String,
    /// Start (UTC).
    pub started_at: String,
    /// Wall time.
    pub duration_s: f64,
    /// Totals over partitions.
    pub records: u64,
    /// Message bytes (key + payload).
    pub message_bytes: u64,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
    /// Compressed bytes.
    pub compressed_bytes: u64,
    /// Encrypted bytes written.
    pub encrypted_bytes: u64,
    /// plaintext / compressed.
    pub compression_ratio: f64,
    /// Objects written.
    pub objects_written: u64,
    /// MB/s of message bytes.
    pub mb_per_s: f64,
    /// Per partition.
    pub partitions: Vec<PartitionReport>,
    /// Where the report was stored, if it was.
    pub report_key: Option<String>,
}

impl RawReport {
    /// Whether any partition failed.
    pub fn failed(&self) -> bool {
        self.partitions.iter().any(|p| p.error.is_some())
    }

    /// A human summary, one line per partition.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "raw run {} topic={} lake={}: {} records, {:.1} MB in → {:.1} MB out (ratio {:.1}), {} objects, {:.2}s ({:.1} MB/s)\n",
            self.run_id,
            self.topic,
            self.lake,
            self.records,
            self.message_bytes as f64 / 1e6,
            self.encrypted_bytes as f64 / 1e6,
            self.compression_ratio,
            self.objects_written,
            self.duration_s,
            self.mb_per_s
        );
        for p in &self.partitions {
            let range = match (p.first_offset, p.last_offset) {
                (Some(a), Some(b)) => format!("{a}..={b}"),
                _ => "-".into(),
            };
            s.push_str(&format!(
                "  partition {:>3}: offsets {:<16} records {:>9}  objects {:>4}  adopted {:>3}  repaired {:>3}  watermarks {}..{}{}{}\n",
                p.partition,
                range,
                p.records,
                p.objects_written,
                p.ranges_adopted,
                p.objects_repaired,
                p.low_watermark,
                p.high_watermark,
                p.gap.map(|(a, b)| format!("  GAP {a}..={b}")).unwrap_or_default(),
                p.error.as_ref().map(|e| format!("  ERROR: {e}")).unwrap_or_default()
            ));
        }
        s
    }
}

/// What a partition has to do in this run.
#[derive(Debug, Clone)]
struct Plan {
    partition: i32,
    /// Claimed ranges whose object is missing: re-read and write exactly these.
    repairs: Vec<Claim>,
    /// New offsets to land: `from..end`.
    from: i64,
    end: i64,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_run_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// Runs one bounded raw batch. Partition failures are recorded in the report (check
/// [`RawReport::failed`]); errors before any partition starts are returned.
pub async fn run(cfg: RawConfig, lake: Lake) -> Result<RawReport, RawError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || run_blocking(cfg, lake, handle))
        .await
        .map_err(|e| RawError::Partition { partition: -1, offset: -1, reason: format!("worker panicked: {e}") })?
}

fn run_blocking(cfg: RawConfig, lake: Lake, rt: tokio::runtime::Handle) -> Result<RawReport, RawError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = new_run_id();
    let mut cc = client_config(&cfg.brokers);
    cc.set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed")
        // One partition per consumer: a small prefetch queue refilled at once (librdkafka's
        // default waits a whole second once the queue is full, which starves the compressor),
        // so memory is flat (a few MiB per worker) and the worker never waits on the broker.
        .set("fetch.max.bytes", "8388608")
        .set("max.partition.fetch.bytes", "1048576")
        .set("queued.max.messages.kbytes", "2048")
        .set("queued.min.messages", "100000")
        .set("fetch.queue.backoff.ms", "5")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in &cfg.kafka_props {
        cc.set(k, v);
    }
    let kerr = |what: &str, source| KafkaEdgeError::Client { brokers: cfg.brokers.clone(), what: what.into(), source };
    let consumer: Arc<BaseConsumer> = Arc::new(cc.create().map_err(|e| kerr("cannot create consumer", e))?);
    let parts = partitions(&consumer, &cfg.brokers, &cfg.topic, Duration::from_secs(15))?;

    // ---- plan every partition from the lake's own checkpoint ----
    let mut plans = Vec::new();
    let mut reports: BTreeMap<i32, PartitionReport> = BTreeMap::new();
    for &p in &parts {
        if let Some((index, count)) = cfg.shard {
            if p.rem_euclid(count as i32) != index as i32 {
                continue;
            }
        }
        let (low, high) = consumer
            .fetch_watermarks(&cfg.topic, p, Duration::from_secs(15))
            .map_err(|e| kerr(&format!("cannot read watermarks of partition {p}"), e))?;
        let mut rep = PartitionReport { partition: p, low_watermark: low, high_watermark: high, ..Default::default() };
        match rt.block_on(plan_partition(&cfg, &lake, &run_id, p, low, high, &mut rep)) {
            Ok(Some(plan)) => plans.push(plan),
            Ok(None) => {}
            Err(e) => rep.error = Some(e.to_string()),
        }
        reports.insert(p, rep);
    }

    // ---- land ----
    // Each worker opens its own consumer per span, assigned at exactly the span's first offset:
    // every consumer has its own librdkafka fetch/decompress thread (one broker thread for the
    // whole run caps throughput near one core), no seek races an asynchronous assignment, and
    // only the partitions being read prefetch (memory stays flat however many partitions wait).
    if !plans.is_empty() {
        let jobs: Mutex<VecDeque<Plan>> = Mutex::new(plans.into());
        let results: Mutex<Vec<PartitionReport>> = Mutex::new(Vec::new());
        let workers = cfg.workers.max(1).min(jobs.lock().map(|j| j.len()).unwrap_or(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let Some(plan) = jobs.lock().ok().and_then(|mut j| j.pop_front()) else { break };
                    let mut rep = reports.get(&plan.partition).cloned().unwrap_or_default();
                    let mut w = Worker { cfg: &cfg, cc: &cc, lake: &lake, rt: &rt, consumer: None, spare: Vec::new(), run_id: &run_id, rep: &mut rep };
                    if let Err(e) = w.land(&plan) {
                        rep.error = Some(e.to_string());
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push(rep);
                    }
                });
            }
        });
        for r in results.into_inner().unwrap_or_default() {
            reports.insert(r.partition, r);
        }
    }

    // ---- report ----
    let partitions: Vec<PartitionReport> = reports.into_values().collect();
    let sum = |f: fn(&PartitionReport) -> u64| partitions.iter().map(f).sum::<u64>();
    let duration_s = started.elapsed().as_secs_f64();
    let mut report = RawReport {
        run_id: run_id.clone(),
        topic: cfg.topic.clone(),
        lake: lake.url().to_string(),
        started_at: started_at.clone(),
        duration_s,
        records: sum(|p| p.records),
        message_bytes: sum(|p| p.message_bytes),
        plaintext_bytes: sum(|p| p.plaintext_bytes),
        compressed_bytes: sum(|p| p.compressed_bytes),
        encrypted_bytes: sum(|p| p.encrypted_bytes),
        compression_ratio: 0.0,
        objects_written: sum(|p| p.objects_written),
        mb_per_s: sum(|p| p.message_bytes) as f64 / 1e6 / duration_s.max(1e-9),
        partitions,
        report_key: None,
    };
    report.compression_ratio = ratio(report.plaintext_bytes, report.compressed_bytes);
    let did_something = report.records > 0 || report.partitions.iter().any(|p| p.error.is_some() || p.gap.is_some() || p.objects_repaired > 0);
    if did_something {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let key = raw_keys::report(&cfg.topic, &stamp, &run_id);
        let json = serde_json::to_vec_pretty(&report).unwrap_or_default();
        match rt.block_on(lake.put_create(&key, Bytes::from(json))) {
            Ok(_) => report.report_key = Some(key),
            Err(e) => tracing::warn!("could not store the run report: {e}"),
        }
    }
    Ok(report)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Reads the partition's claims and decides what this run does there.
async fn plan_partition(cfg: &RawConfig, lake: &Lake, run_id: &str, p: i32, low: i64, high: i64, rep: &mut PartitionReport) -> Result<Option<Plan>, RawError> {
    let topic = &cfg.topic;
    let claims = lake.list(&raw_keys::claims(topic, p)).await?;
    let objects: HashSet<i64> = lake
        .list(&raw_keys::partition(topic, p))
        .await?
        .iter()
        .filter_map(|(k, _)| raw_keys::parse_object(k).map(|(_, _, from, _)| from))
        .collect();
    let claim_from = |key: &str| key.rsplit('/').next()?.strip_suffix(".json")?.parse::<i64>().ok();
    let mut repairs = Vec::new();
    let mut next = 0i64;
    let last_key = claims.iter().filter_map(|(k, _)| claim_from(k).map(|f| (f, k))).max_by_key(|(f, _)| *f);
    for (k, _) in &claims {
        let Some(from) = claim_from(k) else { continue };
        let is_last = last_key.is_some_and(|(f, _)| f == from);
        if objects.contains(&from) && !is_last {
            continue;
        }
        let claim: Claim = lake.get_json(k).await?.ok_or_else(|| RawError::Partition { partition: p, offset: from, reason: format!("claim {k} vanished") })?;
        if is_last {
            next = claim.to + 1;
        }
        if claim.kind == ClaimKind::Data && !objects.contains(&from) {
            repairs.push(claim);
        }
    }
    rep.start_offset = next;
    rep.end_offset = next;
    if let Some(first) = repairs.first() {
        if first.from < low {
            return Err(RawError::Partition {
                partition: p,
                offset: first.from,
                reason: format!(
                    "claimed offsets {}..={} have no object and are no longer in Kafka (oldest offset {low}); the data was never landed",
                    first.from, first.to
                ),
            });
        }
    }
    if next > high {
        return Err(RawError::Partition {
            partition: p,
            offset: next,
            reason: format!("the lake already holds offsets up to {} but Kafka's partition ends at {high}: was the topic recreated? Use a new lake prefix", next - 1),
        });
    }
    if next < low {
        let gap = GapRecord { topic: topic.clone(), partition: p, from: next, to: low - 1, low_watermark: low, action: cfg.on_gap, run_id: run_id.into(), seen_at: now_rfc3339() };
        let key = raw_keys::gap(topic, p, next, low - 1);
        lake.put_create(&key, Bytes::from(serde_json::to_vec_pretty(&gap).unwrap_or_default())).await?;
        rep.gap = Some((next, low - 1));
        if cfg.on_gap == OnGap::Fail {
            return Err(RawError::Partition {
                partition: p,
                offset: next,
                reason: format!(
                    "retention gap: offsets {next}..={} were deleted from Kafka before they were landed (oldest available {low}); recorded at {key}; rerun with --on-gap=skip to accept the loss and continue",
                    low - 1
                ),
            });
        }
        let claim = Claim { from: next, to: low - 1, kind: ClaimKind::Gap, records: 0, object: None, run_id: run_id.into(), created_at: now_rfc3339() };
        let ck = raw_keys::claim(topic, p, next);
        match lake.put_create(&ck, Bytes::from(serde_json::to_vec(&claim).unwrap_or_default())).await? {
            Created::New => next = low,
            Created::Existed => {
                let c: Claim = lake.get_json(&ck).await?.ok_or_else(|| RawError::Partition { partition: p, offset: next, reason: "gap claim vanished".into() })?;
                next = c.to + 1;
            }
        }
        rep.start_offset = next;
    }
    let end = match cfg.max_records {
        Some(m) => high.min(next.saturating_add(m as i64)),
        None => high,
    };
    rep.end_offset = end.max(next);
    if repairs.is_empty() && next >= end {
        return Ok(None);
    }
    Ok(Some(Plan { partition: p, repairs, from: next, end }))
}

/// One object being built.
struct Building {
    sealer: Sealer,
    frames: frames::Encoder,
    from: i64,
    last: i64,
    records: u64,
    message_bytes: u64,
}

enum Published {
    /// Written (or already there from an identical claim); continue after `to`.
    Landed,
    /// Another run owns a different range starting here; continue after its `to`.
    Adopted(i64),
}

struct Worker<'a> {
    cfg: &'a RawConfig,
    cc: &'a rdkafka::ClientConfig,
    lake: &'a Lake,
    rt: &'a tokio::runtime::Handle,
    /// The consumer of the span being read, assigned at its first offset, read in batches.
    consumer: Option<BatchReader>,
    /// Plaintext buffer reused from one object to the next.
    spare: Vec<u8>,
    run_id: &'a str,
    rep: &'a mut PartitionReport,
}

/// Adopted ranges shorter than this are skipped by reading on (cheaper than a new consumer).
const SKIP_BY_READING: i64 = 20_000;

impl Worker<'_> {
    fn fail(&self, offset: i64, reason: impl Into<String>) -> RawError {
        RawError::Partition { partition: self.rep.partition, offset, reason: reason.into() }
    }

    /// Starts reading the partition at `offset` with a fresh consumer (no seek: a seek right
    /// after an assignment races librdkafka's asynchronous start of the fetcher).
    fn open(&mut self, offset: i64) -> Result<(), RawError> {
        self.consumer = None;
        let c: BaseConsumer = self.cc.create().map_err(|e| self.fail(offset, format!("cannot create consumer: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.cfg.topic, self.rep.partition, Offset::Offset(offset))
            .map_err(|e| self.fail(offset, format!("cannot build assignment: {e}")))?;
        c.assign(&tpl).map_err(|e| self.fail(offset, format!("cannot assign: {e}")))?;
        self.consumer = Some(BatchReader::new(c).map_err(|e| self.fail(offset, e))?);
        Ok(())
    }

    /// Moves the read position forward to `to` after `at` (the next offset that would arrive):
    /// short distances are read and dropped, long ones get a new consumer.
    fn skip_to(&mut self, at: i64, to: i64) -> Result<(), RawError> {
        if to - at > SKIP_BY_READING || self.consumer.is_none() {
            self.open(to)?;
        }
        Ok(())
    }

    fn land(&mut self, plan: &Plan) -> Result<(), RawError> {
        let mut position = None;
        for claim in &plan.repairs {
            match position {
                Some(at) if at <= claim.from => self.skip_to(at, claim.from)?,
                _ => self.open(claim.from)?,
            }
            self.read_span(claim.from, claim.to + 1, Some(claim))?;
            position = Some(claim.to + 1);
        }
        if plan.from < plan.end {
            match position {
                Some(at) if at <= plan.from => self.skip_to(at, plan.from)?,
                _ => self.open(plan.from)?,
            }
            self.read_span(plan.from, plan.end, None)?;
        }
        self.consumer = None;
        Ok(())
    }

    /// Lands offsets `from..end`. With `repair`, writes exactly that claimed range as one object.
    fn read_span(&mut self, mut from: i64, end: i64, repair: Option<&Claim>) -> Result<(), RawError> {
        let p = self.rep.partition;
        let mut building: Option<Building> = None;
        // When polls started coming back empty (None while messages flow: no clock read per message).
        let mut idle_since: Option<Instant> = None;
        let mut reading_done = false;
        loop {
            if building.is_none() {
                if reading_done || from >= end {
                    return match repair {
                        Some(c) => Err(self.fail(from, format!("could not re-read claimed offsets {}..={} from Kafka", c.from, c.to))),
                        None => Ok(()),
                    };
                }
                // Another run may already have claimed the range starting here.
                if repair.is_none() {
                    if let Some(c) = self.rt.block_on(self.lake.get_json::<Claim>(&raw_keys::claim(&self.cfg.topic, p, from)))? {
                        self.rep.ranges_adopted += 1;
                        let at = from;
                        from = c.to + 1;
                        if from < end {
                            self.skip_to(at, from)?;
                        }
                        continue;
                    }
                }
            }
            if !reading_done {
                let p = self.rep.partition;
                let fail = |offset: i64, reason: String| RawError::Partition { partition: p, offset, reason };
                let Some(consumer) = self.consumer.as_mut() else { return Err(fail(from, "no consumer open".into())) };
                match consumer.poll(Duration::from_millis(100)) {
                    Polled::Empty => {
                        if idle_since.get_or_insert_with(Instant::now).elapsed() > self.cfg.idle_timeout {
                            return Err(fail(
                                building.as_ref().map_or(from, |b| b.last + 1),
                                format!("no message for {}s before end offset {end} (broker down?)", self.cfg.idle_timeout.as_secs()),
                            ));
                        }
                    }
                    Polled::PartitionEof => reading_done = true,
                    Polled::Error(e) => return Err(fail(building.as_ref().map_or(from, |b| b.last + 1), format!("consume error: {e}"))),
                    Polled::Message { offset: o, timestamp, key, payload } => {
                        idle_since = None;
                        let expected = building.as_ref().map_or(from, |b| b.last + 1);
                        if o < expected {
                            // Prefetched before a seek; not ours.
                        } else if o >= end {
                            reading_done = true;
                        } else {
                            let b = match building.as_mut() {
                                Some(b) => b,
                                None => {
                                    let mut buf = std::mem::take(&mut self.spare);
                                    buf.reserve((self.cfg.object_bytes as usize).min(256 << 20) + 64 * 1024);
                                    // The envelope names the frame format the encoder writes.
                                    let frames = frames::Encoder::default();
                                    let sealer = Sealer::with_buffer(&self.cfg.public_key, self.cfg.zlib_level, frames.content(), buf).map_err(|e| fail(o, e.to_string()))?;
                                    building.insert(Building { sealer, frames, from, last: from - 1, records: 0, message_bytes: 0 })
                                }
                            };
                            // Framed straight into the object's plaintext (no staging copy).
                            b.frames.encode(b.sealer.plaintext_mut(), &Frame { partition: p, offset: o, timestamp, key, payload });
                            b.last = o;
                            b.records += 1;
                            b.message_bytes += (payload.map_or(0, <[u8]>::len) + key.map_or(0, <[u8]>::len)) as u64;
                            self.rep.first_offset.get_or_insert(o);
                            crate::fault::point("record");
                            if o == end - 1 {
                                reading_done = true;
                            }
                        }
                    }
                }
            }
            let cut = match &building {
                Some(b) => reading_done || (repair.is_none() && (b.records >= self.cfg.object_records || b.sealer.plain_bytes() >= self.cfg.object_bytes)),
                None => false,
            };
            if cut {
                let Some(b) = building.take() else { continue };
                let (bfrom, to, records, mbytes) = (b.from, b.last, b.records, b.message_bytes);
                if let Some(c) = repair {
                    if to != c.to || bfrom != c.from {
                        return Err(self.fail(to, format!("re-read of claimed range {}..={} ended at {to}", c.from, c.to)));
                    }
                }
                let (sealed, buf) = b.sealer.finish_reuse().map_err(|e| self.fail(to, e.to_string()))?;
                self.spare = buf;
                match self.publish(bfrom, to, records, sealed, mbytes, repair.is_some())? {
                    Published::Landed => from = to + 1,
                    Published::Adopted(other_to) => {
                        self.rep.ranges_adopted += 1;
                        from = other_to + 1;
                        reading_done = false;
                        if from < end {
                            self.skip_to(to + 1, from)?;
                        }
                    }
                }
                if repair.is_some() {
                    return Ok(());
                }
            }
        }
    }

    fn publish(&mut self, from: i64, to: i64, records: u64, sealed: Sealed, message_bytes: u64, repair: bool) -> Result<Published, RawError> {
        let topic = &self.cfg.topic;
        let p = self.rep.partition;
        let key = raw_keys::object(topic, p, from, to);
        if !repair {
            let claim = Claim { from, to, kind: ClaimKind::Data, records, object: Some(key.clone()), run_id: self.run_id.into(), created_at: now_rfc3339() };
            let ck = raw_keys::claim(topic, p, from);
            if self.rt.block_on(self.lake.put_create(&ck, Bytes::from(serde_json::to_vec(&claim).unwrap_or_default())))? == Created::Existed {
                let theirs: Claim = self.rt.block_on(self.lake.get_json(&ck))?.ok_or_else(|| self.fail(from, format!("claim {ck} vanished")))?;
                if theirs.kind != ClaimKind::Data || theirs.to != to {
                    return Ok(Published::Adopted(theirs.to));
                }
            }
            crate::fault::point("after-claim");
        }
        let size = sealed.bytes.len() as u64;
        let created = self.rt.block_on(self.lake.put_create(&key, Bytes::from(sealed.bytes)))?;
        crate::fault::point("after-object");
        if created == Created::New {
            self.rep.objects_written += 1;
            if repair {
                self.rep.objects_repaired += 1;
            }
            self.rep.records += records;
            self.rep.message_bytes += message_bytes;
            self.rep.plaintext_bytes += sealed.plain_bytes;
            self.rep.compressed_bytes += sealed.compressed_bytes;
            self.rep.encrypted_bytes += size;
            self.rep.compression_ratio = ratio(self.rep.plaintext_bytes, self.rep.compressed_bytes);
            self.rep.last_offset = Some(self.rep.last_offset.map_or(to, |l| l.max(to)));
        } else {
            self.rep.ranges_adopted += 1;
        }
        if self.cfg.commit_offsets {
            let mut tpl = TopicPartitionList::new();
            if let (Ok(()), Some(c)) = (tpl.add_partition_offset(topic, p, Offset::Offset(to + 1)), self.consumer.as_ref().map(BatchReader::consumer)) {
                if let Err(e) = c.commit(&tpl, CommitMode::Sync) {
                    tracing::warn!("partition {p}: could not commit offset {} to group {}: {e}", to + 1, self.cfg.group_id);
                }
            }
        }
        Ok(Published::Landed)
    }
}
