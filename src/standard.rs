//! `etl standard`: raw objects → typed, validated Parquet, every record accounted for.
//!
//! ```text
//!  raw objects not yet in the manifest ──► decrypt + frames (parallel, off the runtime)
//!     │  breadcrumb::parse_records per message
//!     ├──► typed rows, grouped by service date ──┐
//!     └──► rejects (rule, message, payload)       │  per touched service date:
//!                                                 │  merge with the live file(s) of that date,
//!                                                 │  drop duplicate readings (→ rejects),
//!                                                 │  sort by vehicle, trip, act_time,
//!                                                 │  recompute per-trip flags, write one file
//!                                                 ▼
//!  standard/breadcrumbs/service_date=D/part-<version>-<run>-<n>.parquet
//!  standard/rejects/part-<version>-<run>.parquet
//!  standard/_log/<version>.json  (manifest: live files + consumed raw objects; see table.rs)
//! ```
//!
//! Every raw record ends as exactly one row in `breadcrumbs` or one row in `rejects`: the
//! manifest records which raw objects are in, so a rerun converts nothing twice, and a crash
//! before the commit leaves nothing visible.

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::metadata::SortingColumn;
use rsa::RsaPrivateKey;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::breadcrumb::{self, rules, Breadcrumb, Message};
use crate::columnar::{self, WorkBuilder};
use crate::lake::{Lake, LakeError};
use crate::table::{DataFile, Layer, Manifest, TableError};
use crate::verify::{list_objects, open_plaintext, ReadError};

/// Errors of a standard run.
#[derive(Debug, thiserror::Error)]
pub enum StandardError {
    /// Lake I/O.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Commit protocol.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Arrow / Parquet encoding or decoding.
    #[error("{what}: {reason}")]
    Parquet {
        /// File or step.
        what: String,
        /// Cause.
        reason: String,
    },
}

/// Settings of a standard run.
#[derive(Debug, Clone)]
pub struct StandardConfig {
    /// Private key to open raw objects.
    pub private_key: Arc<RsaPrivateKey>,
    /// Only this topic's raw objects (default: every topic).
    pub topic: Option<String>,
    /// At most this many raw objects per run.
    pub max_objects: Option<usize>,
    /// zstd level of the Parquet files.
    pub zstd_level: i32,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Rows per file (a service date with more rows gets several files).
    pub file_rows: usize,
    /// Rows held in memory before they are spilled to staging (bounds memory on big backlogs).
    pub chunk_rows: usize,
}

impl StandardConfig {
    /// Defaults for everything but the key.
    pub fn new(private_key: Arc<RsaPrivateKey>) -> Self {
        Self { private_key, topic: None, max_objects: None, zstd_level: 3, row_group_rows: 128 * 1024, file_rows: 8 * 1024 * 1024, chunk_rows: 250_000 }
    }
}

/// A typed row with its lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The breadcrumb.
    pub bc: Breadcrumb,
    /// Kafka topic.
    pub topic: Arc<str>,
    /// Raw object it came from.
    pub raw_key: Arc<str>,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp (ms).
    pub kafka_ts: Option<i64>,
}

/// A rejected record with its lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectRow {
    /// Kafka topic.
    pub topic: Arc<str>,
    /// Raw object.
    pub raw_key: Arc<str>,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Kafka timestamp (ms).
    pub kafka_ts: Option<i64>,
    /// Service date, when known (duplicates).
    pub service_date: Option<NaiveDate>,
    /// Rule.
    pub rule: &'static str,
    /// Explanation.
    pub message: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Figures of a standard run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StandardReport {
    /// Run id.
    pub run_id: String,
    /// Manifest version committed (none if nothing to do).
    pub version: Option<u64>,
    /// Raw objects converted.
    pub raw_objects: u64,
    /// Raw objects that could not be read (see errors).
    pub raw_objects_failed: u64,
    /// Records in those objects: one per message, or one per element of a message that holds
    /// several (a JSON array, NDJSON, CSV lines).
    pub records_in: u64,
    /// Rows added to `breadcrumbs`.
    pub rows_written: u64,
    /// Records added to `rejects`.
    pub rejects: u64,
    /// Rejects by rule.
    pub rejects_by_rule: BTreeMap<String, u64>,
    /// Soft flags on the new rows, by rule.
    pub flags_by_rule: BTreeMap<String, u64>,
    /// How records were encoded.
    pub encodings: BTreeMap<String, u64>,
    /// Sealed raw bytes read.
    pub bytes_in: u64,
    /// Parquet bytes written.
    pub bytes_out: u64,
    /// Parquet files written.
    pub files_written: u64,
    /// Service dates rewritten.
    pub service_dates: Vec<String>,
    /// Live files in `breadcrumbs` after the run.
    pub live_files: u64,
    /// Wall time.
    pub duration_s: f64,
    /// Raw objects that failed, with the reason.
    pub errors: Vec<String>,
}

impl StandardReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "standard run {}: {} raw objects, {} records → {} rows + {} rejects; {:.1} MB in → {:.1} MB Parquet in {} files ({} service dates), {:.2}s{}\n",
            self.run_id,
            self.raw_objects,
            self.records_in,
            self.rows_written,
            self.rejects,
            self.bytes_in as f64 / 1e6,
            self.bytes_out as f64 / 1e6,
            self.files_written,
            self.service_dates.len(),
            self.duration_s,
            self.version.map(|v| format!(", committed version {v}")).unwrap_or_else(|| ", nothing to commit".into())
        );
        for (r, n) in &self.rejects_by_rule {
            s.push_str(&format!("  reject {r}: {n}\n"));
        }
        for (r, n) in &self.flags_by_rule {
            s.push_str(&format!("  flag   {r}: {n}\n"));
        }
        for e in &self.errors {
            s.push_str(&format!("  ERROR {e}\n"));
        }
        s
    }
}

/// Schema of `breadcrumbs` files (`service_date` lives in the hive path).
pub fn breadcrumbs_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let utc: Arc<str> = Arc::from("UTC");
        Arc::new(Schema::new(vec![
            Field::new("trip_id", DataType::Int64, false),
            Field::new("stop_event_id", DataType::Int64, true),
            Field::new("vehicle_id", DataType::Int64, false),
            Field::new("act_time", DataType::Int32, false),
            Field::new("event_time", DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())), false),
            Field::new("meters", DataType::Int64, true),
            Field::new("latitude", DataType::Float64, true),
            Field::new("longitude", DataType::Float64, true),
            Field::new("satellites", DataType::Int32, true),
            Field::new("hdop", DataType::Float64, true),
            Field::new("velocity", DataType::Float64, true),
            Field::new("direction", DataType::Float64, true),
            Field::new("radio_quality", DataType::Float64, true),
            Field::new("schedule_deviation", DataType::Int64, true),
            Field::new("quality_flags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
            Field::new("extra", DataType::Utf8, true),
            Field::new("encoding", DataType::Utf8, false),
            Field::new("kafka_topic", DataType::Utf8, false),
            Field::new("kafka_partition", DataType::Int32, false),
            Field::new("kafka_offset", DataType::Int64, false),
            Field::new("kafka_timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some(utc)), true),
            Field::new("raw_key", DataType::Utf8, false),
        ]))
    })
    .clone()
}

/// Schema of `rejects` files.
pub fn rejects_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("raw_key", DataType::Utf8, false),
            Field::new("kafka_topic", DataType::Utf8, false),
            Field::new("kafka_partition", DataType::Int32, false),
            Field::new("kafka_offset", DataType::Int64, false),
            Field::new("kafka_timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))), true),
            Field::new("service_date", DataType::Date32, true),
            Field::new("rule", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("payload_is_utf8", DataType::Boolean, false),
        ]))
    })
    .clone()
}

fn pq_err(what: &str, e: impl std::fmt::Display) -> StandardError {
    StandardError::Parquet { what: what.into(), reason: e.to_string() }
}

/// Builds a `breadcrumbs` batch from rows.
pub fn rows_to_batch(rows: &[Row]) -> Result<RecordBatch, StandardError> {
    let mut flags = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for f in &r.bc.flags {
            flags.values().append_value(f);
        }
        flags.append(true);
    }
    let i64s = |f: &dyn Fn(&Row) -> Option<i64>| Arc::new(rows.iter().map(f).collect::<Int64Array>()) as ArrayRef;
    let f64s = |f: &dyn Fn(&Row) -> Option<f64>| Arc::new(rows.iter().map(f).collect::<Float64Array>()) as ArrayRef;
    let strs = |f: &dyn Fn(&Row) -> Option<&str>| Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef;
    let cols: Vec<ArrayRef> = vec![
        i64s(&|r| Some(r.bc.trip_id)),
        i64s(&|r| r.bc.stop_event_id),
        i64s(&|r| Some(r.bc.vehicle_id)),
        Arc::new(rows.iter().map(|r| Some(r.bc.act_time)).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.bc.event_time_us)).collect::<TimestampMicrosecondArray>().with_timezone("UTC")),
        i64s(&|r| r.bc.meters),
        f64s(&|r| r.bc.latitude),
        f64s(&|r| r.bc.longitude),
        Arc::new(rows.iter().map(|r| r.bc.satellites).collect::<Int32Array>()),
        f64s(&|r| r.bc.hdop),
        f64s(&|r| r.bc.velocity),
        f64s(&|r| r.bc.direction),
        f64s(&|r| r.bc.radio_quality),
        i64s(&|r| r.bc.schedule_deviation),
        Arc::new(flags.finish()),
        strs(&|r| r.bc.extra.as_deref()),
        strs(&|r| Some(r.bc.encoding)),
        strs(&|r| Some(&r.topic)),
        Arc::new(rows.iter().map(|r| Some(r.partition)).collect::<Int32Array>()),
        i64s(&|r| Some(r.offset)),
        Arc::new(rows.iter().map(|r| r.kafka_ts).collect::<TimestampMillisecondArray>().with_timezone("UTC")),
        strs(&|r| Some(&r.raw_key)),
    ];
    // The flags list field must match the schema's exactly.
    let schema = breadcrumbs_schema();
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow::compute::cast(&c, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pq_err("building breadcrumbs batch", e))?;
    RecordBatch::try_new(schema, cols).map_err(|e| pq_err("building breadcrumbs batch", e))
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, StandardError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| pq_err("reading standard file", format!("column {name} missing or of the wrong type")))
}

/// Reads rows back from a `breadcrumbs` batch of the given service date.
pub fn rows_from_batch(b: &RecordBatch, service_date: NaiveDate) -> Result<Vec<Row>, StandardError> {
    let i64c = |n: &str| col::<Int64Array>(b, n);
    let f64c = |n: &str| col::<Float64Array>(b, n);
    let (trip, stop, veh, meters, sched, off) = (i64c("trip_id")?, i64c("stop_event_id")?, i64c("vehicle_id")?, i64c("meters")?, i64c("schedule_deviation")?, i64c("kafka_offset")?);
    let (lat, lon, hdop, vel, dir, radio) = (f64c("latitude")?, f64c("longitude")?, f64c("hdop")?, f64c("velocity")?, f64c("direction")?, f64c("radio_quality")?);
    let act = col::<Int32Array>(b, "act_time")?;
    let sats = col::<Int32Array>(b, "satellites")?;
    let part = col::<Int32Array>(b, "kafka_partition")?;
    let et = col::<TimestampMicrosecondArray>(b, "event_time")?;
    let kts = col::<TimestampMillisecondArray>(b, "kafka_timestamp")?;
    let flags = col::<ListArray>(b, "quality_flags")?;
    let (extra, enc, topic, raw) = (col::<StringArray>(b, "extra")?, col::<StringArray>(b, "encoding")?, col::<StringArray>(b, "kafka_topic")?, col::<StringArray>(b, "raw_key")?);
    let opt_i = |a: &Int64Array, i| (!a.is_null(i)).then(|| a.value(i));
    let opt_f = |a: &Float64Array, i| (!a.is_null(i)).then(|| a.value(i));
    let mut interned: HashMap<String, Arc<str>> = HashMap::new();
    let mut intern = |s: &str| interned.entry(s.to_string()).or_insert_with(|| Arc::from(s)).clone();
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let fl = flags.value(i);
        let fl = fl.as_any().downcast_ref::<StringArray>().ok_or_else(|| pq_err("reading standard file", "quality_flags is not a list of strings"))?;
        let flags: Vec<&'static str> = fl.iter().flatten().filter_map(|f| rules::SOFT.iter().find(|r| **r == f).copied()).collect();
        out.push(Row {
            bc: Breadcrumb {
                trip_id: trip.value(i),
                stop_event_id: opt_i(stop, i),
                vehicle_id: veh.value(i),
                service_date,
                act_time: act.value(i),
                event_time_us: et.value(i),
                meters: opt_i(meters, i),
                latitude: opt_f(lat, i),
                longitude: opt_f(lon, i),
                satellites: (!sats.is_null(i)).then(|| sats.value(i)),
                hdop: opt_f(hdop, i),
                velocity: opt_f(vel, i),
                direction: opt_f(dir, i),
                radio_quality: opt_f(radio, i),
                schedule_deviation: opt_i(sched, i),
                flags,
                extra: (!extra.is_null(i)).then(|| extra.value(i).to_string()),
                encoding: breadcrumb::encoding_of(enc.value(i)),
            },
            topic: intern(topic.value(i)),
            raw_key: intern(raw.value(i)),
            partition: part.value(i),
            offset: off.value(i),
            kafka_ts: (!kts.is_null(i)).then(|| kts.value(i)),
        });
    }
    Ok(out)
}

/// Builds a `rejects` batch.
pub fn rejects_to_batch(rows: &[RejectRow]) -> Result<RecordBatch, StandardError> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(&*r.raw_key)).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(&*r.topic)).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.partition)).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.offset)).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.kafka_ts).collect::<TimestampMillisecondArray>().with_timezone("UTC")),
        Arc::new(rows.iter().map(|r| r.service_date.map(|d| (d - epoch).num_days() as i32)).collect::<Date32Array>()),
        Arc::new(rows.iter().map(|r| Some(r.rule)).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.message.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(String::from_utf8_lossy(&r.payload).into_owned())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(std::str::from_utf8(&r.payload).is_ok())).collect::<BooleanArray>()),
    ];
    RecordBatch::try_new(rejects_schema(), cols).map_err(|e| pq_err("building rejects batch", e))
}

/// Parquet writer settings: zstd, page-level statistics and page index, sorted by vehicle,
/// trip and time so that one vehicle or one trip is a narrow range of pages.
pub fn writer_props(zstd_level: i32, row_group_rows: usize, sorted: bool) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level).unwrap_or_default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(16 * 1024)
        .set_write_batch_size(4096)
        .set_created_by(format!("etl {}", env!("CARGO_PKG_VERSION")));
    // Sorted integers delta-encode to almost nothing; floats compress far better split by byte.
    use parquet::basic::Encoding;
    use parquet::schema::types::ColumnPath;
    for c in ["act_time", "event_time", "meters", "stop_event_id", "kafka_offset", "kafka_timestamp", "start_time", "end_time", "duration_s", "points"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false).set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    for c in ["latitude", "longitude", "hdop", "velocity", "direction", "radio_quality", "distance_m", "path_length_m", "avg_speed_mps", "max_speed_mps", "min_lat", "max_lat", "min_lon", "max_lon"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false).set_column_encoding(ColumnPath::from(c), Encoding::BYTE_STREAM_SPLIT);
    }
    // No min/max for the lineage strings: rows are sorted by vehicle, so every row group spans
    // nearly every raw object and encoding and their bounds would skip nothing, while computing
    // them compares a ~70-byte key per row.
    for c in ["raw_key", "encoding"] {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    if sorted {
        b = b.set_sorting_columns(Some(sort_columns().to_vec()));
    }
    b.build()
}

/// The order `breadcrumbs` files are written in and declare: vehicle_id, trip_id, act_time.
fn sort_columns() -> [SortingColumn; 3] {
    [2, 0, 3].map(|column_idx| SortingColumn { column_idx, descending: false, nulls_first: false })
}

/// Encodes one batch as a Parquet file.
pub fn write_parquet(batch: &RecordBatch, props: WriterProperties) -> Result<Vec<u8>, StandardError> {
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 8 + 1024);
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(|e| pq_err("parquet writer", e))?;
    w.write(batch).map_err(|e| pq_err("parquet write", e))?;
    w.close().map_err(|e| pq_err("parquet close", e))?;
    Ok(buf)
}

/// Decodes a whole Parquet file.
pub fn read_parquet(bytes: Bytes, what: &str) -> Result<Vec<RecordBatch>, StandardError> {
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| pq_err(what, e))?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| pq_err(what, e))?;
    r.collect::<Result<Vec<_>, _>>().map_err(|e| pq_err(what, e))
}

/// One raw object parsed: a work batch per service date, its rejects, and counts for the report.
pub struct Converted {
    /// New rows by service date (work schema, see `columnar`).
    pub by_date: BTreeMap<NaiveDate, RecordBatch>,
    /// Records that failed a hard rule.
    pub rejects: Vec<RejectRow>,
    /// Rows per soft rule (index into `rules::SOFT`).
    pub flags: [u64; 6],
    /// Rows per encoding (index into `breadcrumb::ENCODINGS`).
    pub encodings: [u64; breadcrumb::ENCODINGS.len()],
    /// Rows (not rejects).
    pub rows: usize,
}

impl Default for Converted {
    fn default() -> Self {
        Self { by_date: BTreeMap::new(), rejects: Vec::new(), flags: [0; 6], encodings: [0; breadcrumb::ENCODINGS.len()], rows: 0 }
    }
}

/// Why a raw object was not converted.
pub enum ConvertError {
    /// The object is unreadable (frames or offsets wrong): it is reported and left unconsumed.
    Object(ReadError),
    /// Building its columns failed: the run stops.
    Standard(StandardError),
}

/// Converts one opened raw object into columnar rows (per service date) and rejects, decoding
/// and checking its frames as it goes.
pub fn convert_object(o: &crate::verify::OpenedPlaintext, topic: &Arc<str>) -> Result<Converted, ConvertError> {
    let raw_key: Arc<str> = Arc::from(o.key.as_str());
    let mut out = Converted::default();
    let mut builders: BTreeMap<NaiveDate, WorkBuilder> = BTreeMap::new();
    // Room for about as many rows as frames could fit (breadcrumbs take 150-300 bytes a frame);
    // space reserved and never written costs no memory.
    let room = o.plaintext.len() / 96 + 16;
    for f in o.frames() {
        let f = f.map_err(ConvertError::Object)?;
        let payload = f.payload_in(&o.plaintext);
        let mut record = |r: Result<Breadcrumb, breadcrumb::Reject>, text: &[u8]| match r {
            Ok(bc) => {
                let (bits, encoding) = builders.entry(bc.service_date).or_insert_with(|| WorkBuilder::spare_or_new(room)).push(&bc, f.partition, f.offset, f.timestamp);
                for (i, n) in out.flags.iter_mut().enumerate() {
                    *n += u64::from(bits >> i & 1);
                }
                out.encodings[encoding] += 1;
                out.rows += 1;
            }
            Err(rj) => out.rejects.push(RejectRow {
                topic: topic.clone(),
                raw_key: raw_key.clone(),
                partition: f.partition,
                offset: f.offset,
                kafka_ts: f.timestamp,
                service_date: None,
                rule: rj.rule,
                message: rj.message,
                payload: text.to_vec(),
            }),
        };
        match breadcrumb::parse_records(payload) {
            Message::One(r) => record(r, payload.unwrap_or_default()),
            // A batch: every element is a record (a row or a reject holding the element's text),
            // all with the message's partition and offset.
            Message::Batch(elements) => {
                for e in elements {
                    record(e.result, &e.text);
                }
            }
        }
    }
    for (d, b) in builders {
        out.by_date.insert(d, b.finish(topic, &raw_key).map_err(ConvertError::Standard)?);
    }
    Ok(out)
}

/// The order raw objects are converted in: partitions interleaved, each object at its relative
/// position within its partition (the 3rd of 10 objects comes at 30%), so that a chunk of rows
/// held in memory covers a slice of time across all partitions rather than one partition's
/// whole span. Kafka order is close to time order, so each spilled run then touches only a few
/// service dates and each date is merged from a few runs instead of one per chunk (less memory
/// and a cheaper merge). Within a partition objects stay in offset order; ties are broken by
/// key, so the order is deterministic.
pub fn processing_order(keys: Vec<String>) -> Vec<String> {
    let mut per: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for k in keys {
        let (part, from) = match crate::lake::raw_keys::parse_object(&k) {
            Some((t, p, from, _)) => (format!("{t}/{p}"), from),
            None => (String::new(), 0),
        };
        per.entry(part).or_default().push((from, k));
    }
    let mut ranked: Vec<(u128, String)> = Vec::new();
    for (_, mut objs) in per {
        objs.sort();
        let n = objs.len() as u128;
        ranked.extend(objs.into_iter().enumerate().map(|(i, (_, k))| ((i as u128) * (1u128 << 64) / n, k)));
    }
    ranked.sort();
    ranked.into_iter().map(|(_, k)| k).collect()
}

/// Removes the run's local spill directory however the run ends.
struct SpillDir(std::path::PathBuf);

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rows per batch of a spilled run (what a run holds in memory while it is merged).
const SPILL_BATCH_ROWS: usize = 16 * 1024;

/// Writes each date's batches, sorted in merge order, as one Arrow IPC stream file under `dir`
/// (uncompressed, direct I/O: this is scratch space, read back once; see [`crate::scratch`]).
fn spill_local(dir: &std::path::Path, chunk: usize, by_date: BTreeMap<NaiveDate, Vec<RecordBatch>>) -> Result<Vec<(NaiveDate, std::path::PathBuf)>, StandardError> {
    let mut out = Vec::new();
    for (date, batches) in by_date {
        let what = format!("spilling to {}", dir.display());
        let path = dir.join(format!("{date}-{chunk:06}.arrows"));
        let file = crate::scratch::ScratchWriter::create(&path).map_err(|e| pq_err(&what, e))?;
        let order = columnar::sort_order(&batches);
        // Columns null in every row of the run (the older feed's four, most of the time) are
        // left out of the file and come back as nulls when it is read (`spill_source`).
        let schema = columnar::work_schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| !schema.field(i).is_nullable() || batches.iter().any(|b| b.column(i).null_count() < b.num_rows()))
            .collect();
        let kept = batches.iter().map(|b| b.project(&keep)).collect::<Result<Vec<_>, _>>().map_err(|e| pq_err(&what, e))?;
        let mut w = arrow::ipc::writer::StreamWriter::try_new(file, &schema.project(&keep).map_err(|e| pq_err(&what, e))?).map_err(|e| pq_err(&what, e))?;
        for slice in order.chunks(SPILL_BATCH_ROWS) {
            w.write(&columnar::take_work(&kept, slice)?).map_err(|e| pq_err(&what, e))?;
        }
        w.into_inner().map_err(|e| pq_err(&what, e))?.finish().map_err(|e| pq_err(&what, e))?;
        drop(kept);
        // The chunk's column buffers go to the next objects' builders.
        columnar::recycle(batches);
        out.push((date, path));
    }
    Ok(out)
}

/// A spill running off the runtime: the files it wrote, per date.
type Spilling = tokio::task::JoinHandle<Result<Vec<(NaiveDate, std::path::PathBuf)>, StandardError>>;

/// Starts spilling `by_date` off the runtime; parsing goes on meanwhile (see [`spill_done`]).
/// The directory is made here, not by the task: if the run fails meanwhile and removes it, the
/// task's writes fail instead of leaving files behind.
fn spill_start(dir: &SpillDir, chunk: usize, by_date: BTreeMap<NaiveDate, Vec<RecordBatch>>) -> Result<Spilling, StandardError> {
    let dir = dir.0.clone();
    std::fs::create_dir_all(&dir).map_err(|e| pq_err(&format!("spilling to {}", dir.display()), e))?;
    Ok(tokio::task::spawn_blocking(move || {
        let r = spill_local(&dir, chunk, by_date);
        // The chunk's columns are freed now; hand the pages back (see `release_free_memory`).
        crate::release_free_memory();
        r
    }))
}

/// Waits for a spill started by [`spill_start`] and records its files per date.
async fn spill_done(s: Spilling, spilled: &mut BTreeMap<NaiveDate, Vec<std::path::PathBuf>>) -> Result<(), StandardError> {
    for (d, p) in s.await.map_err(|e| pq_err("spill", e))?? {
        spilled.entry(d).or_default().push(p);
    }
    Ok(())
}

/// New files being uploaded at most at once (each a few MB to `--file-rows` rows).
const UPLOADS_IN_FLIGHT: usize = 4;

/// Uploads of a run's new files, oldest first; those still running when the run fails are
/// aborted.
struct Uploads(std::collections::VecDeque<tokio::task::JoinHandle<Result<(), LakeError>>>);

impl Uploads {
    /// Starts writing `bytes` at `key`, first waiting for the oldest upload when
    /// [`UPLOADS_IN_FLIGHT`] are running (with a slow store, finished dates' bytes would
    /// otherwise pile up).
    async fn start(&mut self, lake: &Lake, key: String, bytes: Bytes) -> Result<(), StandardError> {
        if self.0.len() >= UPLOADS_IN_FLIGHT {
            self.wait_oldest().await?;
        }
        let lake = lake.clone();
        self.0.push_back(tokio::spawn(async move { lake.put_create(&key, bytes).await.map(|_| ()) }));
        Ok(())
    }

    /// Waits for the oldest upload, if any.
    async fn wait_oldest(&mut self) -> Result<(), StandardError> {
        match self.0.pop_front() {
            Some(u) => Ok(u.await.map_err(|e| pq_err("upload", e))??),
            None => Ok(()),
        }
    }

    /// Waits for every upload (the rest are aborted if one fails).
    async fn finish(&mut self) -> Result<(), StandardError> {
        while !self.0.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        for u in &self.0 {
            u.abort();
        }
    }
}

/// The last spill of a run, awaited by each of its dates' merges.
type LastSpill = futures::future::Shared<futures::future::BoxFuture<'static, Arc<Result<Vec<(NaiveDate, std::path::PathBuf)>, StandardError>>>>;

fn last_spill(s: Spilling) -> LastSpill {
    use futures::FutureExt;
    async move { Arc::new(s.await.map_err(|e| pq_err("spill", e)).and_then(|r| r)) }.boxed().shared()
}

/// The files of a finished spill, or its error (again: every date of the spill asks).
fn spill_outcome(spill: &Result<Vec<(NaiveDate, std::path::PathBuf)>, StandardError>) -> Result<&[(NaiveDate, std::path::PathBuf)], StandardError> {
    match spill {
        Ok(files) => Ok(files),
        Err(StandardError::Parquet { what, reason }) => Err(StandardError::Parquet { what: what.clone(), reason: reason.clone() }),
        Err(e) => Err(pq_err("spill", e)),
    }
}

/// A spilled run, read one batch at a time (the file is unlinked at once: its space is freed
/// when the merge drops it).
fn spill_source(path: &std::path::Path) -> Result<columnar::Source, StandardError> {
    let (what, batches) = read_spill(path)?;
    Ok(columnar::Source::sorted(what, batches))
}

/// The batches of a spill file, in the work schema, read one at a time; the file is unlinked
/// once open.
fn read_spill(path: &std::path::Path) -> Result<(String, impl Iterator<Item = Result<RecordBatch, StandardError>> + Send + 'static), StandardError> {
    let what = format!("spill file {}", path.display());
    let r = crate::scratch::IpcBatches::open(path).map_err(|e| pq_err(&what, e))?;
    let _ = std::fs::remove_file(path);
    let w = what.clone();
    let mut nulls = Vec::new();
    Ok((what, r.map(move |b| b.map_err(|e| pq_err(&w, e)).and_then(|b| widen_spilled(&b, &mut nulls, &w)))))
}

/// A spilled batch back in the work schema: the columns left out (null in every row of the
/// run) are put back as nulls, slices of one all-null column per run (`nulls`, by column)
/// rather than a fresh zeroed buffer per batch.
fn widen_spilled(b: &RecordBatch, nulls: &mut Vec<Option<arrow::array::ArrayRef>>, what: &str) -> Result<RecordBatch, StandardError> {
    let schema = columnar::work_schema();
    if b.schema() == schema {
        return Ok(b.clone());
    }
    nulls.resize(schema.fields().len(), None);
    let n = b.num_rows();
    let cols = schema
        .fields()
        .iter()
        .zip(nulls.iter_mut())
        .map(|(f, null)| {
            b.column_by_name(f.name()).cloned().unwrap_or_else(|| {
                let all = null.get_or_insert_with(|| arrow::array::new_null_array(f.data_type(), n.max(SPILL_BATCH_ROWS)));
                if all.len() < n {
                    *all = arrow::array::new_null_array(f.data_type(), n);
                }
                all.slice(0, n)
            })
        })
        .collect();
    RecordBatch::try_new(schema, cols).map_err(|e| pq_err(what, e))
}

/// A live file of a service date as a run: streamed when its row groups declare the merge's
/// sort order (every file etl writes does), otherwise read whole and sorted.
fn live_source(path: String, bytes: Bytes) -> Result<columnar::Source, StandardError> {
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| pq_err(&path, e))?.with_batch_size(SPILL_BATCH_ROWS);
    let sorted = b.metadata().row_groups().iter().all(|rg| rg.sorting_columns().is_some_and(|s| s.starts_with(&sort_columns())));
    let reader = b.build().map_err(|e| pq_err(&path, e))?;
    let what = format!("live file {path}");
    let w = what.clone();
    let batches = reader.map(move |b| b.map_err(|e| pq_err(&w, e)).and_then(|b| columnar::to_work(&b, false)));
    if sorted {
        Ok(columnar::Source::sorted(what, batches))
    } else {
        let v = batches.collect::<Result<Vec<_>, _>>()?;
        columnar::Source::memory(what, v)
    }
}

/// What merging one service date produced.
struct DateOut {
    date: NaiveDate,
    files: Vec<(Vec<u8>, u64)>,
    dups: Vec<RejectRow>,
    new_rows: u64,
    new_backwards: u64,
}

/// Merges one service date: its live files, spilled runs and in-memory batches → new files.
fn merge_date_files(date: NaiveDate, live: Vec<(String, Bytes)>, runs: Vec<std::path::PathBuf>, batches: Vec<RecordBatch>, file_rows: usize, props: WriterProperties, share: &columnar::CoreShare) -> Result<DateOut, StandardError> {
    let mut sources = Vec::with_capacity(live.len() + runs.len() + 1);
    for (path, bytes) in live {
        sources.push(live_source(path, bytes)?);
    }
    for r in &runs {
        sources.push(spill_source(r)?);
    }
    if !batches.is_empty() {
        sources.push(columnar::Source::memory(format!("new rows of {date}"), batches)?);
    }
    let m = columnar::merge_write(sources, date, file_rows, 64 * 1024, &props, share)?;
    Ok(DateOut { date, files: m.files, dups: m.dups, new_rows: m.new_rows, new_backwards: m.new_backwards })
}

/// Service dates merged at once beyond one per core. A merge waits now and then (a spilled
/// run's next block, its slice being encoded, a new file being started), and with one merge per
/// core that core idled: 1.4–1.7 of 2 cores busy through the merges of a 5M-record backfill
/// (7 dates); with one more, 1.8–2.0, and `etl standard` 2–3% faster in 6 of 6 alternating
/// pairs for ≈ 10 MiB more peak memory. With more merges than cores none gets a second
/// encoding thread ([`columnar::CoreShare`]) until the others are done.
const MERGES_ABOVE_CORES: usize = 1;

/// Runs `etl standard` (retrying when a concurrent run commits first).
pub async fn run(cfg: &StandardConfig, lake: &Lake) -> Result<StandardReport, StandardError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run_once(cfg, lake).await {
            Err(StandardError::Table(TableError::Conflict { .. })) if attempt < 5 => {
                tracing::warn!("a concurrent standard run committed first; retrying");
                continue;
            }
            other => return other,
        }
    }
}

async fn run_once(cfg: &StandardConfig, lake: &Lake) -> Result<StandardReport, StandardError> {
    let started = Instant::now();
    let run_id = crate::table::new_run_id();
    let layer = Layer::new(lake.clone(), "standard");
    let parent = layer.recover(&["breadcrumbs", "rejects"]).await?;
    let version = parent.as_ref().map_or(1, |m| m.version + 1);
    let mut report = StandardReport { run_id: run_id.clone(), ..Default::default() };

    let prefix = match &cfg.topic {
        Some(t) => format!("raw/{t}/partition="),
        None => "raw/".to_string(),
    };
    let consumed = parent.as_ref().map(|m| &m.consumed);
    let pending: Vec<String> = list_objects(lake, &prefix)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| consumed.is_none_or(|c| !c.contains_key(k)))
        .collect();
    let mut pending = processing_order(pending);
    if let Some(n) = cfg.max_objects {
        pending.truncate(n);
    }
    if pending.is_empty() {
        report.live_files = parent.as_ref().and_then(|m| m.tables.get("breadcrumbs")).map_or(0, |v| v.len() as u64);
        report.duration_s = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // ---- decode and parse, in parallel, straight into Arrow columns per service date ----
    // Memory stays bounded: once `chunk_rows` rows are held they are spilled to local scratch
    // files (Arrow IPC), and service dates are merged a few at a time.
    let staging = layer.staging(&run_id);
    let spill_dir = SpillDir(std::env::var_os("ETL_SPILL_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from).join(format!("etl-standard-{run_id}")));
    let mut by_date: BTreeMap<NaiveDate, Vec<RecordBatch>> = BTreeMap::new();
    let mut spilled: BTreeMap<NaiveDate, Vec<std::path::PathBuf>> = BTreeMap::new();
    let mut chunk_rows = 0usize;
    let mut chunk_no = 0usize;
    // Time parsing stood still waiting for the previous spill (debug log).
    let mut spill_wait = std::time::Duration::ZERO;
    // The spill being written, with the service dates it holds.
    let mut spilling: Option<(Spilling, std::collections::BTreeSet<NaiveDate>)> = None;
    let mut rejects: Vec<RejectRow> = Vec::new();
    let mut consumed_now: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new(); // records, rows, rejects
    let mut stream = futures::stream::iter(pending.iter().map(|k| {
        let pk = cfg.private_key.clone();
        async move {
            let sealed = match lake.get(k).await {
                Ok(b) => b,
                Err(e) => return (k.clone(), Err(ConvertError::Object(e.into()))),
            };
            let bytes = sealed.len() as u64;
            let (k2, topic): (String, Arc<str>) = (k.clone(), Arc::from(k.strip_prefix("raw/").and_then(|r| r.split('/').next()).unwrap_or("")));
            let conv = tokio::task::spawn_blocking(move || {
                let o = open_plaintext(&k2, &sealed, &pk).map_err(ConvertError::Object)?;
                drop(sealed);
                convert_object(&o, &topic)
            })
            .await
            .unwrap_or_else(|e| Err(ConvertError::Standard(pq_err("parser", e))));
            (k.clone(), conv.map(|c| (c, bytes)))
        }
    }))
    .buffered(crate::parallelism() + 1);
    while let Some((key, r)) = stream.next().await {
        match r {
            Ok((conv, bytes)) => {
                report.raw_objects += 1;
                report.bytes_in += bytes;
                consumed_now.insert(key, ((conv.rows + conv.rejects.len()) as u64, conv.rows as u64, conv.rejects.len() as u64));
                chunk_rows += conv.rows;
                for (i, n) in conv.flags.iter().enumerate() {
                    if *n > 0 {
                        *report.flags_by_rule.entry(rules::SOFT[i].to_string()).or_default() += n;
                    }
                }
                for (i, n) in conv.encodings.iter().enumerate() {
                    if *n > 0 {
                        *report.encodings.entry(breadcrumb::ENCODINGS[i].to_string()).or_default() += n;
                    }
                }
                for (d, b) in conv.by_date {
                    by_date.entry(d).or_default().push(b);
                }
                rejects.extend(conv.rejects);
                if chunk_rows >= cfg.chunk_rows.max(1) {
                    // One spill at a time: the chunk before this one must be on disk first.
                    if let Some((s, _)) = spilling.take() {
                        let t = Instant::now();
                        spill_done(s, &mut spilled).await?;
                        spill_wait += t.elapsed();
                    }
                    let spill_dates = by_date.keys().copied().collect();
                    spilling = Some((spill_start(&spill_dir, chunk_no, std::mem::take(&mut by_date))?, spill_dates));
                    chunk_rows = 0;
                    chunk_no += 1;
                }
            }
            Err(ConvertError::Standard(e)) => return Err(e),
            Err(ConvertError::Object(e)) => {
                report.raw_objects_failed += 1;
                report.errors.push(match e {
                    ReadError::Envelope { .. } | ReadError::Content { .. } => e.to_string(),
                    other => format!("{key}: {other}"),
                });
            }
        }
    }
    drop(stream);
    // The last spill may still be being written: the dates it holds wait for it (`last_spill`),
    // the others start merging meanwhile, so no core idles while it finishes.
    let (last_spill, last_spill_dates) = match spilling.take() {
        Some((s, dates)) => (Some(last_spill(s)), dates),
        None => (None, std::collections::BTreeSet::new()),
    };
    crate::envelope::release_buffers();
    columnar::release_spare();
    tracing::debug!(objects = report.raw_objects, spills = chunk_no, spill_wait_s = spill_wait.as_secs_f64(), elapsed_s = started.elapsed().as_secs_f64(), "raw objects parsed");
    report.records_in = consumed_now.values().map(|c| c.0).sum();
    if consumed_now.is_empty() {
        report.duration_s = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // ---- merge each touched service date with its live files, a few dates at a time ----
    // Each date is an external merge of sorted runs (its live files, its spilled chunks and the
    // rows still in memory, at most `chunk_rows`), written as it is merged.
    let mut tables: BTreeMap<String, Vec<DataFile>> = parent.as_ref().map(|m| m.tables.clone()).unwrap_or_default();
    let live_bc = tables.remove("breadcrumbs").unwrap_or_default();
    let mut new_bc: Vec<DataFile> = Vec::new();
    let mut staged: BTreeMap<String, String> = BTreeMap::new();
    let mut dates: std::collections::BTreeSet<NaiveDate> = by_date.keys().copied().collect();
    dates.extend(spilled.keys().copied());
    dates.extend(last_spill_dates.iter().copied());
    let touched: std::collections::BTreeSet<String> = dates.iter().map(|d| format!("service_date={d}")).collect();
    let mut kept_bc: Vec<DataFile> = live_bc.iter().filter(|f| !touched.contains(&f.partition)).cloned().collect();
    let jobs: Vec<_> = dates
        .iter()
        .map(|d| {
            let part = format!("service_date={d}");
            let live: Vec<String> = live_bc.iter().filter(|f| f.partition == part).map(|f| f.path.clone()).collect();
            let wait = last_spill.clone().filter(|_| last_spill_dates.contains(d));
            (*d, by_date.remove(d).unwrap_or_default(), spilled.remove(d).unwrap_or_default(), live, wait)
        })
        .collect();
    let (file_rows, props) = (cfg.file_rows, writer_props(cfg.zstd_level, cfg.row_group_rows, true));
    let share = columnar::CoreShare::new(crate::parallelism());
    let mut merged = futures::stream::iter(jobs.into_iter().map(|(date, batches, mut runs, live, wait)| {
        let (props, share) = (props.clone(), share.clone());
        async move {
            if let Some(w) = wait {
                // After the date's earlier runs, as if it had been waited for before merging.
                runs.extend(spill_outcome(&*w.await)?.iter().filter(|(d, _)| *d == date).map(|(_, p)| p.clone()));
            }
            let mut live_bytes = Vec::new();
            for path in live {
                let bytes = lake.get(&path).await?;
                live_bytes.push((path, bytes));
            }
            let merged = tokio::task::spawn_blocking(move || {
                let out = merge_date_files(date, live_bytes, runs, batches, file_rows, props, &share);
                crate::release_free_memory();
                out
            });
            merged.await.map_err(|e| pq_err("merge", e))?
        }
    }))
    .buffer_unordered(MERGES_ABOVE_CORES + crate::parallelism());
    let mut outs: Vec<DateOut> = Vec::new();
    // Files are uploaded by tasks of their own: writing one (≈ 0.1 s of kernel time for 10 MB
    // on a local lake) held up the loop that starts the next date's merge, and a core idled.
    let mut uploads = Uploads(std::collections::VecDeque::new());
    while let Some(r) = merged.next().await {
        let DateOut { date, files, dups, new_rows, new_backwards } = r?;
        tracing::debug!(%date, new_rows, elapsed_s = started.elapsed().as_secs_f64(), "service date merged");
        // Upload as soon as a date is done so its bytes are not held.
        let part = format!("service_date={date}");
        for (n, (bytes, rows_in_file)) in files.into_iter().enumerate() {
            let name = format!("part-{version:06}-{run_id}-{n:03}.parquet");
            let final_key = format!("standard/breadcrumbs/{part}/{name}");
            let staged_key = format!("{staging}/breadcrumbs/{part}/{name}");
            let size = bytes.len() as u64;
            uploads.start(lake, staged_key.clone(), Bytes::from(bytes)).await?;
            report.bytes_out += size;
            report.files_written += 1;
            new_bc.push(DataFile { path: final_key.clone(), partition: part.clone(), rows: rows_in_file, bytes: size });
            staged.insert(staged_key, final_key);
        }
        outs.push(DateOut { date, files: Vec::new(), dups, new_rows, new_backwards });
    }
    drop(merged);
    uploads.finish().await?;
    if let Some(w) = last_spill {
        // Every date of the last spill waited for it above; this only surfaces an error.
        spill_outcome(&*w.await)?;
    }
    // The merges' in-memory runs sorted with the kept key space: free it too.
    columnar::release_spare();
    crate::scratch::release_blocks();
    crate::scratch::release_messages();
    outs.sort_by_key(|o| o.date);
    for out in outs {
        // meters_backwards depends on neighbours, so it is counted after the merge (new rows only).
        *report.flags_by_rule.entry(rules::METERS_BACKWARDS.to_string()).or_default() += out.new_backwards;
        report.rows_written += out.new_rows;
        for d in &out.dups {
            if let Some(c) = consumed_now.get_mut(&*d.raw_key) {
                c.1 = c.1.saturating_sub(1);
                c.2 += 1;
            }
        }
        rejects.extend(out.dups);
        report.service_dates.push(out.date.to_string());
    }
    report.flags_by_rule.retain(|_, n| *n > 0);

    if !rejects.is_empty() {
        rejects.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
        for r in &rejects {
            *report.rejects_by_rule.entry(r.rule.to_string()).or_default() += 1;
        }
        report.rejects = rejects.len() as u64;
        let batch = rejects_to_batch(&rejects)?;
        let zl = cfg.zstd_level;
        let bytes = tokio::task::spawn_blocking(move || write_parquet(&batch, writer_props(zl, 1 << 20, false))).await.map_err(|e| pq_err("writer", e))??;
        let name = format!("part-{version:06}-{run_id}.parquet");
        let final_key = format!("standard/rejects/{name}");
        let staged_key = format!("{staging}/rejects/{name}");
        let size = bytes.len() as u64;
        lake.put_create(&staged_key, Bytes::from(bytes)).await?;
        report.bytes_out += size;
        report.files_written += 1;
        tables.entry("rejects".into()).or_default().push(DataFile { path: final_key.clone(), partition: String::new(), rows: rejects.len() as u64, bytes: size });
        staged.insert(staged_key, final_key);
    }
    kept_bc.extend(new_bc);
    kept_bc.sort_by(|a, b| a.path.cmp(&b.path));
    report.live_files = kept_bc.len() as u64;
    tables.insert("breadcrumbs".into(), kept_bc);

    let mut consumed_all = parent.as_ref().map(|m| m.consumed.clone()).unwrap_or_default();
    for (k, (records, rows, rj)) in consumed_now {
        consumed_all.insert(k, serde_json::json!({"records": records, "rows": rows, "rejects": rj}));
    }
    report.version = Some(version);
    report.duration_s = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        version,
        run_id: run_id.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        consumed: consumed_all,
        tables,
        staged,
        report: serde_json::to_value(&report).unwrap_or_default(),
    };
    crate::fault::point("before-commit");
    if let Err(e) = layer.commit(parent.as_ref(), &manifest).await {
        let _ = layer.discard_staging(&run_id).await;
        return Err(e.into());
    }
    report.duration_s = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(vehicle: i64, trip: i64, act: i32, meters: i64, partition: i32, offset: i64) -> Row {
        let payload = format!(
            r#"{{"EVENT_NO_TRIP":{trip},"VEHICLE_ID":{vehicle},"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":{act},"METERS":{meters},"GPS_LATITUDE":45.5,"GPS_LONGITUDE":-122.6}}"#
        );
        Row { bc: breadcrumb::parse(payload.as_bytes()).unwrap(), topic: Arc::from("t"), raw_key: Arc::from("raw/t/x"), partition, offset, kafka_ts: Some(1) }
    }

    #[test]
    fn objects_are_converted_partitions_interleaved_in_offset_order() {
        let k = |p: i32, from: i64| crate::lake::raw_keys::object("bc", p, from, from + 9);
        // Partition 0 has four objects, partition 1 two; listing order is key order.
        let listed = vec![k(0, 0), k(0, 10), k(0, 20), k(0, 30), k(1, 0), k(1, 10)];
        let order = processing_order(listed.clone());
        assert_eq!(order, vec![k(0, 0), k(1, 0), k(0, 10), k(0, 20), k(1, 10), k(0, 30)]);
        // Deterministic whatever order the listing came in, and nothing lost.
        let mut rev = listed.clone();
        rev.reverse();
        assert_eq!(processing_order(rev), order);
        // Offsets sort numerically, not as strings.
        assert_eq!(processing_order(vec![k(2, 100), k(2, 90)]), vec![k(2, 90), k(2, 100)]);
    }

    #[test]
    fn spilled_runs_read_back_sorted_and_whole_with_all_null_columns_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let batch = |older: bool, n: i64| -> RecordBatch {
            let mut b = WorkBuilder::with_capacity(4);
            for i in 0..n {
                let more = if older { r#","VELOCITY":3,"DIRECTION":90,"RADIO_QUALITY":null,"SCHEDULE_DEVIATION":-5"# } else { "" };
                let p = format!(r#"{{"EVENT_NO_TRIP":{},"VEHICLE_ID":7,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":{}{more}}}"#, 10 - i % 3, 100 - i);
                b.push(&breadcrumb::parse(p.as_bytes()).unwrap(), 0, i, Some(5));
            }
            b.finish("t", "raw/t/k").unwrap()
        };
        // A run of the 10-field feed only (the older four columns all null: left out), and one
        // mixing both feeds (kept; RADIO_QUALITY is null everywhere and left out).
        for (chunk, older) in [(0, false), (1, true)] {
            let batches = vec![batch(older, 5), batch(false, 3)];
            let want = columnar::take_work(&batches, &columnar::sort_order(&batches)).unwrap();
            let files = spill_local(dir.path(), chunk, BTreeMap::from([(d, batches)])).unwrap();
            assert_eq!(files.len(), 1);
            let on_disk = arrow::ipc::reader::StreamReader::try_new(std::fs::File::open(&files[0].1).unwrap(), None).unwrap().schema();
            assert!(on_disk.column_with_name("radio_quality").is_none() && on_disk.column_with_name("velocity").is_some() == older, "{on_disk:?}");
            let (_, back) = read_spill(&files[0].1).unwrap();
            let back: Vec<RecordBatch> = back.collect::<Result<_, _>>().unwrap();
            assert_eq!(arrow::compute::concat_batches(&columnar::work_schema(), &back).unwrap(), want);
            assert!(!files[0].1.exists(), "spill file left behind");
        }
    }

    #[test]
    fn batches_roundtrip_through_parquet() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let mut r = row(7, 8, 9, 10, 1, 2);
        r.bc.flags = vec![rules::HDOP_HIGH, rules::SATELLITES];
        r.bc.extra = Some("{\"X\":1}".into());
        let rows = vec![r, row(7, 8, 10, 11, 1, 3)];
        let bytes = write_parquet(&rows_to_batch(&rows).unwrap(), writer_props(3, 1024, true)).unwrap();
        let back: Vec<Row> = read_parquet(Bytes::from(bytes), "t").unwrap().iter().flat_map(|b| rows_from_batch(b, d).unwrap()).collect();
        assert_eq!(back, rows);
        let rj = vec![RejectRow { topic: Arc::from("t"), raw_key: Arc::from("k"), partition: 0, offset: 1, kafka_ts: None, service_date: None, rule: rules::EMPTY, message: "m".into(), payload: vec![0xff] }];
        let b = rejects_to_batch(&rj).unwrap();
        assert_eq!(b.num_rows(), 1);
    }
}
