//! The columnar working set of `etl standard`: parsed breadcrumbs go straight into Arrow
//! columns (no per-row structs), and each service date is merged as an external merge sort:
//! every run of rows is in merge order (vehicle, trip, time, lineage), the runs are merged k
//! ways while the output is written, duplicate readings are dropped and per-trip flags
//! recomputed on the fly. Memory per date is one batch per run, not the date's rows. Pure
//! transformations: no lake, no Kafka, no clock.
//!
//! ```text
//!  payloads ──parse──► WorkBuilder (per object, per service date) ──finish──► work batch
//!     │ chunk of rows in memory full: sort_order + take_work per date ──► spilled sorted run ─┐
//!     │ rows still in memory at the end ───────────────────────────────► Source::memory ─────┤
//!  live Parquet file of the date (sorted when written) ──► to_work ────► Source::sorted ─────┤
//!                                                                                            ▼
//!   merge_write: k-way merge of the runs' heads ─► dedupe (→ duplicate rejects) ─► meters_backwards
//!                ─► slice of `slice_rows` rows ══channel══► encoder thread: from_work ─► ArrowWriter,
//!                                                           one file per `file_rows`
//! ```
//!
//! The merge and the encoding of its slices overlap only while cores are to spare
//! ([`CoreShare`]): the last service date of a run, or the only one of a daily run, gets two.
//!
//! The work schema is the `breadcrumbs` schema with three changes that keep memory and copies
//! small: `quality_flags` is a bit set (`flag_bits`, bit i = `rules::SOFT[i]`), the repeated
//! strings (`encoding`, `kafka_topic`, `raw_key`) are dictionary-encoded, and `is_new` tells the
//! run's rows from those already in the lake (which win ties).

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Float64Builder, Int32Array, Int32Builder, Int64Array, Int64Builder, ListArray,
    ListBuilder, PrimitiveArray, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMillisecondBuilder,
    UInt8Array,
};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef};
use arrow::buffer::{BooleanBuffer, ScalarBuffer};
use chrono::NaiveDate;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::file::writer::SerializedFileWriter;
use parquet::file::properties::WriterProperties;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, OnceLock};

use crate::breadcrumb::{rules, Breadcrumb, ENCODINGS};
use crate::standard::{breadcrumbs_schema, RejectRow, StandardError};

/// Column positions (shared by the work and the `breadcrumbs` schema up to `RAW_KEY`).
mod c {
    pub const TRIP: usize = 0;
    pub const STOP: usize = 1;
    pub const VEHICLE: usize = 2;
    pub const ACT: usize = 3;
    pub const EVENT: usize = 4;
    pub const METERS: usize = 5;
    pub const LAT: usize = 6;
    pub const LON: usize = 7;
    pub const SATS: usize = 8;
    pub const HDOP: usize = 9;
    pub const VEL: usize = 10;
    pub const DIR: usize = 11;
    pub const RADIO: usize = 12;
    pub const SCHED: usize = 13;
    pub const FLAGS: usize = 14;
    pub const EXTRA: usize = 15;
    pub const ENCODING: usize = 16;
    pub const TOPIC: usize = 17;
    pub const PARTITION: usize = 18;
    pub const OFFSET: usize = 19;
    pub const KAFKA_TS: usize = 20;
    pub const RAW_KEY: usize = 21;
    pub const IS_NEW: usize = 22;
}

fn err(what: &str, e: impl std::fmt::Display) -> StandardError {
    StandardError::Parquet { what: what.into(), reason: e.to_string() }
}

fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema batches have while a run works on them (see the module docs).
pub fn work_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let mut fields: Vec<Field> = breadcrumbs_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[c::FLAGS] = Field::new("flag_bits", DataType::UInt8, false);
        for i in [c::ENCODING, c::TOPIC, c::RAW_KEY] {
            fields[i] = Field::new(fields[i].name(), dict_type(), false);
        }
        fields.push(Field::new("is_new", DataType::Boolean, false));
        Arc::new(Schema::new(fields))
    })
    .clone()
}

/// Bit of a soft rule in `flag_bits`.
pub fn flag_bit(rule: &str) -> u8 {
    rules::SOFT.iter().position(|r| *r == rule).map_or(0, |i| 1u8 << i)
}

/// Soft rules set in `bits`, in `rules::SOFT` order.
pub fn flags_of(bits: u8) -> impl Iterator<Item = &'static str> {
    rules::SOFT.iter().enumerate().filter(move |(i, _)| bits & (1 << i) != 0).map(|(_, r)| *r)
}

/// Gathers parsed breadcrumbs of one object and one service date as Arrow columns.
#[derive(Default)]
pub struct WorkBuilder {
    trip: Vec<i64>,
    stop: Int64Builder,
    vehicle: Vec<i64>,
    act: Vec<i32>,
    event: Vec<i64>,
    meters: Int64Builder,
    lat: Float64Builder,
    lon: Float64Builder,
    sats: Int32Builder,
    hdop: Float64Builder,
    vel: Float64Builder,
    dir: Float64Builder,
    radio: Float64Builder,
    sched: Int64Builder,
    flags: Vec<u8>,
    extra: StringBuilder,
    encoding: Vec<i32>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    kafka_ts: TimestampMillisecondBuilder,
}

impl WorkBuilder {
    /// A builder with room for `n` rows: columns grow without reallocating and copying (space
    /// never written is never touched, so an over-estimate costs no memory).
    pub fn with_capacity(n: usize) -> Self {
        Self {
            trip: Vec::with_capacity(n),
            stop: Int64Builder::with_capacity(n),
            vehicle: Vec::with_capacity(n),
            act: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            meters: Int64Builder::with_capacity(n),
            lat: Float64Builder::with_capacity(n),
            lon: Float64Builder::with_capacity(n),
            sats: Int32Builder::with_capacity(n),
            hdop: Float64Builder::with_capacity(n),
            vel: Float64Builder::with_capacity(n),
            dir: Float64Builder::with_capacity(n),
            radio: Float64Builder::with_capacity(n),
            sched: Int64Builder::with_capacity(n),
            flags: Vec::with_capacity(n),
            extra: StringBuilder::new(),
            encoding: Vec::with_capacity(n),
            partition: Vec::with_capacity(n),
            offset: Vec::with_capacity(n),
            kafka_ts: TimestampMillisecondBuilder::with_capacity(n),
        }
    }

    /// A builder for about `n` rows made of the column buffers of a spilled chunk when one is
    /// spare (see [`recycle`]), else [`WorkBuilder::with_capacity`].
    pub fn spare_or_new(n: usize) -> Self {
        let Some(mut w) = SPARE.lock().ok().and_then(|mut s| s.pop()) else { return Self::with_capacity(n) };
        for v in [&mut w.trip, &mut w.vehicle, &mut w.event, &mut w.offset] {
            v.reserve(n);
        }
        for v in [&mut w.act, &mut w.encoding, &mut w.partition] {
            v.reserve(n);
        }
        w.flags.reserve(n);
        w
    }

    /// The column buffers of a work batch nothing else holds, emptied, as a builder (`None`
    /// when a buffer is shared or not the right kind).
    fn from_spent(b: RecordBatch) -> Option<Self> {
        let (_, cols, _) = b.into_parts();
        if cols.len() != c::IS_NEW + 1 {
            return None;
        }
        let mut cols = cols.into_iter().map(Some).collect::<Vec<_>>();
        let mut take = |i: usize| cols[i].take().expect("each column is taken once");
        let encoding = {
            let d = take(c::ENCODING);
            let d = d.as_dictionary_opt::<Int32Type>()?.clone();
            d.into_parts().0
        };
        Some(WorkBuilder {
            trip: spare_vec::<Int64Type>(take(c::TRIP))?,
            stop: spare_builder(take(c::STOP))?,
            vehicle: spare_vec::<Int64Type>(take(c::VEHICLE))?,
            act: spare_vec::<Int32Type>(take(c::ACT))?,
            event: spare_vec::<arrow::datatypes::TimestampMicrosecondType>(take(c::EVENT))?,
            meters: spare_builder(take(c::METERS))?,
            lat: spare_builder(take(c::LAT))?,
            lon: spare_builder(take(c::LON))?,
            sats: spare_builder(take(c::SATS))?,
            hdop: spare_builder(take(c::HDOP))?,
            vel: spare_builder(take(c::VEL))?,
            dir: spare_builder(take(c::DIR))?,
            radio: spare_builder(take(c::RADIO))?,
            sched: spare_builder(take(c::SCHED))?,
            flags: spare_vec::<arrow::datatypes::UInt8Type>(take(c::FLAGS))?,
            extra: StringBuilder::new(),
            encoding: spare_vec::<Int32Type>(Arc::new(encoding))?,
            partition: spare_vec::<Int32Type>(take(c::PARTITION))?,
            offset: spare_vec::<Int64Type>(take(c::OFFSET))?,
            kafka_ts: spare_builder(take(c::KAFKA_TS))?,
        })
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.trip.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.trip.is_empty()
    }

    /// Adds one breadcrumb with its Kafka lineage; returns its flag bits and encoding index
    /// (into `ENCODINGS`) for the caller's counts.
    pub fn push(&mut self, bc: &Breadcrumb, partition: i32, offset: i64, kafka_ts: Option<i64>) -> (u8, usize) {
        let bits = bc.flags.iter().fold(0u8, |b, f| b | flag_bit(f));
        // (The parser hands out the entries themselves: comparing addresses finds them first.)
        let encoding = ENCODINGS.iter().position(|e| std::ptr::eq(*e, bc.encoding)).or_else(|| ENCODINGS.iter().position(|e| *e == bc.encoding)).unwrap_or(0);
        self.trip.push(bc.trip_id);
        self.stop.append_option(bc.stop_event_id);
        self.vehicle.push(bc.vehicle_id);
        self.act.push(bc.act_time);
        self.event.push(bc.event_time_us);
        self.meters.append_option(bc.meters);
        self.lat.append_option(bc.latitude);
        self.lon.append_option(bc.longitude);
        self.sats.append_option(bc.satellites);
        self.hdop.append_option(bc.hdop);
        self.vel.append_option(bc.velocity);
        self.dir.append_option(bc.direction);
        self.radio.append_option(bc.radio_quality);
        self.sched.append_option(bc.schedule_deviation);
        self.flags.push(bits);
        self.extra.append_option(bc.extra.as_deref());
        self.encoding.push(encoding as i32);
        self.partition.push(partition);
        self.offset.push(offset);
        self.kafka_ts.append_option(kafka_ts);
        (bits, encoding)
    }

    /// The rows as a work batch (`is_new` = true) from `topic` and raw object `raw_key`.
    pub fn finish(mut self, topic: &str, raw_key: &str) -> Result<RecordBatch, StandardError> {
        let n = self.len();
        let constant = |s: &str| -> ArrayRef { Arc::new(DictionaryArray::<Int32Type>::new(Int32Array::from(vec![0; n]), Arc::new(StringArray::from(vec![s])))) };
        let encodings: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::new(Int32Array::from(self.encoding), Arc::new(StringArray::from(ENCODINGS.to_vec()))));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.trip)),
            Arc::new(self.stop.finish()),
            Arc::new(Int64Array::from(self.vehicle)),
            Arc::new(Int32Array::from(self.act)),
            Arc::new(TimestampMicrosecondArray::from(self.event).with_timezone("UTC")),
            Arc::new(self.meters.finish()),
            Arc::new(self.lat.finish()),
            Arc::new(self.lon.finish()),
            Arc::new(self.sats.finish()),
            Arc::new(self.hdop.finish()),
            Arc::new(self.vel.finish()),
            Arc::new(self.dir.finish()),
            Arc::new(self.radio.finish()),
            Arc::new(self.sched.finish()),
            Arc::new(UInt8Array::from(self.flags)),
            Arc::new(self.extra.finish()),
            encodings,
            constant(topic),
            Arc::new(Int32Array::from(self.partition)),
            Arc::new(Int64Array::from(self.offset)),
            Arc::new(self.kafka_ts.finish().with_timezone("UTC")),
            constant(raw_key),
            Arc::new(BooleanArray::from(vec![true; n])),
        ];
        RecordBatch::try_new(work_schema(), cols).map_err(|e| err("building work batch", e))
    }
}

/// Builders made of spilled chunks' buffers, waiting for the next objects (see [`recycle`]).
static SPARE: std::sync::Mutex<Vec<WorkBuilder>> = std::sync::Mutex::new(Vec::new());

/// At most this many builders wait in [`SPARE`] (measured, 5M records: 2 avoids a fifth of the
/// page faults for ~40 MiB more resident memory at the peak; 3 or 4 add memory, not speed).
const SPARE_MAX: usize = 2;

/// Hands the column buffers of work batches that are done with (a chunk just spilled) to the
/// next objects' builders. The pages of those buffers are already mapped: fresh ones cost a
/// page fault per 4 KiB the first time they are written, and once freed and handed back to the
/// system (`release_free_memory`, which keeps resident memory flat) every chunk paid that again:
/// about a third of the page faults of `etl standard`. Batches whose buffers are shared are
/// dropped as usual.
pub fn recycle(batches: impl IntoIterator<Item = RecordBatch>) {
    let Ok(mut spare) = SPARE.lock() else { return };
    for b in batches {
        if spare.len() >= SPARE_MAX {
            return;
        }
        spare.extend(WorkBuilder::from_spent(b));
    }
}

/// Frees the spare builders and the sort's kept space (call when no more objects will be
/// parsed for a while).
pub fn release_spare() {
    if let Ok(mut s) = SPARE.lock() {
        s.clear();
    }
    if let Ok(mut s) = SORT_SPACE.lock() {
        *s = Vec::new();
    }
}

/// The values of a primitive column nothing else holds, as an empty `Vec` with their capacity.
fn spare_vec<T: ArrowPrimitiveType>(col: ArrayRef) -> Option<Vec<T::Native>> {
    if !PrimitiveArray::<T>::is_compatible(col.data_type()) {
        return None;
    }
    let data = col.to_data();
    drop(col);
    let (_, values, _) = PrimitiveArray::<T>::from(data).into_parts();
    let mut v = values.into_inner().into_vec::<T::Native>().ok()?;
    v.clear();
    Some(v)
}

/// A builder on the values of a primitive column nothing else holds (its null bitmap, small,
/// is not kept).
fn spare_builder<T: ArrowPrimitiveType>(col: ArrayRef) -> Option<arrow::array::PrimitiveBuilder<T>> {
    let v = spare_vec::<T>(col)?;
    Some(arrow::array::PrimitiveBuilder::new_from_buffer(arrow::buffer::MutableBuffer::from(v), None))
}

/// A `breadcrumbs` batch (read back from a live file) as a work batch.
pub fn to_work(b: &RecordBatch, is_new: bool) -> Result<RecordBatch, StandardError> {
    let what = "reading standard file";
    if b.num_columns() != c::RAW_KEY + 1 {
        return Err(err(what, format!("{} columns, expected {}", b.num_columns(), c::RAW_KEY + 1)));
    }
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    let lists = cols[c::FLAGS].as_list_opt::<i32>().ok_or_else(|| err(what, "quality_flags is not a list"))?;
    let values = lists.values().as_string_opt::<i32>().ok_or_else(|| err(what, "quality_flags is not a list of strings"))?;
    let offsets = lists.value_offsets();
    let bits: UInt8Array = (0..lists.len())
        .map(|i| Some((offsets[i] as usize..offsets[i + 1] as usize).filter(|j| values.is_valid(*j)).fold(0u8, |b, j| b | flag_bit(values.value(j)))))
        .collect();
    cols[c::FLAGS] = Arc::new(bits);
    for i in [c::ENCODING, c::TOPIC, c::RAW_KEY] {
        cols[i] = arrow::compute::cast(&cols[i], &dict_type()).map_err(|e| err(what, e))?;
    }
    cols.push(Arc::new(BooleanArray::from(vec![is_new; b.num_rows()])));
    // Field-level differences (list item names, metadata) are not ours to keep.
    let cols = cols
        .into_iter()
        .zip(work_schema().fields())
        .map(|(a, f)| if a.data_type() == f.data_type() { Ok(a) } else { arrow::compute::cast(&a, f.data_type()) })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(what, e))?;
    RecordBatch::try_new(work_schema(), cols).map_err(|e| err(what, e))
}

/// Rows `idx` (batch, row) of work batches, in that order, still in the work schema (how a
/// sorted run is spilled).
pub fn take_work(ws: &[RecordBatch], idx: &[(u32, u32)]) -> Result<RecordBatch, StandardError> {
    let what = "sorting a run";
    let idx: Vec<(usize, usize)> = idx.iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
    let Some(first) = ws.first() else {
        return arrow::compute::interleave_record_batch(&[], &idx).map_err(|e| err(what, e));
    };
    let rows = Rows::new(&idx);
    let cols = (0..first.num_columns())
        .map(|i| rows.gather(&ws.iter().map(|w| w.column(i).as_ref()).collect::<Vec<_>>()).map_err(|e| err(what, e)))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(first.schema(), cols, &arrow::array::RecordBatchOptions::new().with_row_count(Some(idx.len()))).map_err(|e| err(what, e))
}

/// Below this many rows per stretch on average, [`Rows::gather`] takes rows one by one.
const MIN_STRETCH: usize = 8;

/// Rows (array, row) to gather from a few arrays, in that order, with the stretches of
/// consecutive rows of one array they form. A merge's output comes in long stretches: each
/// run of a date covers its own span of Kafka offsets, so a trip's readings come from one run
/// for hundreds of rows before the next run takes over (≈ 1,500 rows per stretch in a
/// 5M-record benchmark run). Copying a stretch as a range is a `memcpy` per column where
/// `interleave` looks every row up on its own (7% of `etl standard`'s CPU in `perf`).
pub(crate) struct Rows<'a> {
    idx: &'a [(usize, usize)],
    /// (array, first row, rows), or `None` when stretches are too short to be worth it.
    stretches: Option<Vec<(usize, usize, usize)>>,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(idx: &'a [(usize, usize)]) -> Self {
        let mut st: Vec<(usize, usize, usize)> = Vec::new();
        for &(a, r) in idx {
            match st.last_mut() {
                Some((la, first, n)) if *la == a && *first + *n == r => *n += 1,
                _ => {
                    if st.len() * MIN_STRETCH > idx.len() {
                        return Self { idx, stretches: None };
                    }
                    st.push((a, r, 1));
                }
            }
        }
        let stretches = (!idx.is_empty() && st.len() * MIN_STRETCH <= idx.len()).then_some(st);
        Self { idx, stretches }
    }

    /// The rows as slices of column `i` of `ws`, one per stretch, when they come in long
    /// stretches and the column already has its [`write_schema`] type (not `flag_bits`).
    fn slices(&self, ws: &[RecordBatch], i: usize) -> Option<Vec<ArrayRef>> {
        let st = self.stretches.as_ref()?;
        let want = write_schema();
        let want = want.fields().get(i)?.data_type();
        if i == c::FLAGS || ws.iter().any(|w| w.num_columns() <= i || w.column(i).data_type() != want) {
            return None;
        }
        st.iter().map(|&(a, first, n)| ws.get(a).map(|w| w.column(i)).filter(|x| first + n <= x.len()).map(|x| x.slice(first, n))).collect()
    }

    /// The rows of `arrays` (all of one type), as one array.
    pub(crate) fn gather(&self, arrays: &[&dyn Array]) -> Result<ArrayRef, arrow::error::ArrowError> {
        // Both `interleave` and `MutableArrayData` panic on rows out of range: an error instead.
        let out_of_range = |a: usize, first: usize, n: usize| arrays.get(a).is_none_or(|x| first + n > x.len());
        let bad = match &self.stretches {
            Some(st) => st.iter().find(|&&(a, first, n)| out_of_range(a, first, n)).copied(),
            None => self.idx.iter().find(|&&(a, r)| out_of_range(a, r, 1)).map(|&(a, r)| (a, r, 1)),
        };
        if let Some((a, first, n)) = bad {
            return Err(arrow::error::ArrowError::InvalidArgumentError(format!("rows {first}..{} of array {a} of {}: out of range", first + n, arrays.len())));
        }
        let Some(st) = &self.stretches else {
            return arrow::compute::interleave(arrays, self.idx);
        };
        let data: Vec<arrow::array::ArrayData> = arrays.iter().map(|a| a.to_data()).collect();
        let mut out = arrow::array::MutableArrayData::new(data.iter().collect(), false, self.idx.len());
        for &(a, first, n) in st {
            out.try_extend(a, first, first + n)?;
        }
        Ok(arrow::array::make_array(out.freeze()))
    }
}

/// The `breadcrumbs` schema with its repeated strings (`encoding`, `kafka_topic`, `raw_key`)
/// still dictionary-encoded: what [`from_work`] hands the Parquet writer. The writer is made
/// with the `breadcrumbs` schema and takes dictionary arrays for string columns as they are
/// (it dictionary-encodes them anyway), so the files read back with plain strings while the
/// strings are never spelled out row by row in memory.
pub fn write_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let mut fields: Vec<Field> = breadcrumbs_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        for i in [c::ENCODING, c::TOPIC, c::RAW_KEY] {
            fields[i] = Field::new(fields[i].name(), dict_type(), false);
        }
        Arc::new(Schema::new(fields))
    })
    .clone()
}

/// Rows `idx` (batch, row) of work batches, in that order, in the [`write_schema`] (the
/// `breadcrumbs` schema, repeated strings as dictionaries), with `bits` (one per row) in place
/// of the rows' own flag bits when given.
pub fn from_work(ws: &[RecordBatch], idx: &[(u32, u32)], bits: Option<&[u8]>) -> Result<RecordBatch, StandardError> {
    let idx: Vec<(usize, usize)> = idx.iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
    let (schema, rows) = (write_schema(), Rows::new(&idx));
    let cols = (0..schema.fields().len()).map(|i| write_column(ws, &rows, bits, i)).collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, cols).map_err(|e| err("building breadcrumbs batch", e))
}

/// Column `i` of the [`write_schema`] for rows `idx` of `ws` (see [`from_work`]).
fn write_column(ws: &[RecordBatch], rows: &Rows<'_>, bits: Option<&[u8]>, i: usize) -> Result<ArrayRef, StandardError> {
    let what = "building breadcrumbs batch";
    let schema = write_schema();
    let f = schema.field(i);
    let take = || {
        let arrays: Vec<&dyn Array> = ws.iter().map(|w| w.column(i).as_ref()).collect();
        rows.gather(&arrays).map_err(|e| err(what, e))
    };
    if i == c::FLAGS {
        let taken;
        let bits = match bits {
            Some(b) => b,
            None => {
                taken = take()?;
                taken.as_primitive::<arrow::datatypes::UInt8Type>().values().as_ref()
            }
        };
        let mut lb = ListBuilder::with_capacity(StringBuilder::new(), bits.len());
        for b in bits {
            for r in flags_of(*b) {
                lb.values().append_value(r);
            }
            lb.append(true);
        }
        let list: ListArray = lb.finish();
        arrow::compute::cast(&list, f.data_type()).map_err(|e| err(what, e))
    } else {
        let taken = take()?;
        if taken.data_type() != f.data_type() {
            arrow::compute::cast(&taken, f.data_type()).map_err(|e| err(what, e))
        } else {
            Ok(taken)
        }
    }
}

fn prim<T: ArrowPrimitiveType>(b: &RecordBatch, i: usize) -> &PrimitiveArray<T> {
    b.column(i).as_primitive::<T>()
}

fn same<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize, b: &PrimitiveArray<T>, j: usize) -> bool
where
    T::Native: PartialEq,
{
    match (a.is_valid(i), b.is_valid(j)) {
        (true, true) => a.value(i) == b.value(j),
        (false, false) => true,
        _ => false,
    }
}

fn same_f64(a: &PrimitiveArray<Float64Type>, i: usize, b: &PrimitiveArray<Float64Type>, j: usize) -> bool {
    match (a.is_valid(i), b.is_valid(j)) {
        (true, true) => a.value(i).to_bits() == b.value(j).to_bits(),
        (false, false) => true,
        _ => false,
    }
}

fn dict_str(a: &ArrayRef, i: usize) -> Option<String> {
    let d = a.as_dictionary_opt::<Int32Type>()?;
    let k = d.keys().value(i) as usize;
    Some(d.values().as_string_opt::<i32>()?.value(k).to_string())
}

/// The value columns compared to find repeated readings, of one batch.
struct Values<'a> {
    stop: &'a PrimitiveArray<Int64Type>,
    meters: &'a PrimitiveArray<Int64Type>,
    sats: &'a PrimitiveArray<Int32Type>,
    sched: &'a PrimitiveArray<Int64Type>,
    floats: [&'a PrimitiveArray<Float64Type>; 6],
    extra: &'a StringArray,
}

impl<'a> Values<'a> {
    fn of(w: &'a RecordBatch) -> Self {
        let f = |i| prim::<Float64Type>(w, i);
        Values {
            stop: prim(w, c::STOP),
            meters: prim(w, c::METERS),
            sats: prim(w, c::SATS),
            sched: prim(w, c::SCHED),
            floats: [f(c::LAT), f(c::LON), f(c::HDOP), f(c::VEL), f(c::DIR), f(c::RADIO)],
            extra: w.column(c::EXTRA).as_string::<i32>(),
        }
    }

    fn same(&self, i: usize, o: &Values<'_>, j: usize) -> bool {
        same(self.stop, i, o.stop, j)
            && same(self.meters, i, o.meters, j)
            && same(self.sats, i, o.sats, j)
            && same(self.sched, i, o.sched, j)
            && self.floats.iter().zip(o.floats.iter()).all(|(a, b)| same_f64(a, i, b, j))
            && self.extra.is_valid(i) == o.extra.is_valid(j)
            && (!self.extra.is_valid(i) || self.extra.value(i) == o.extra.value(j))
    }
}

fn check_schema(what: &str, b: &RecordBatch) -> Result<(), StandardError> {
    if b.schema() != work_schema() {
        return Err(err(what, "a batch does not have the work schema"));
    }
    Ok(())
}

/// The merge order of the rows of `batches`: vehicle, trip, act_time, rows already in the lake
/// before new ones, then topic, partition, offset.
pub fn sort_order(batches: &[RecordBatch]) -> Vec<(u32, u32)> {
    // Topic order by name (dictionary keys differ from batch to batch).
    let mut names: Vec<&str> = batches.iter().flat_map(|b| b.column(c::TOPIC).as_dictionary::<Int32Type>().values().as_string::<i32>().iter().flatten()).collect();
    names.sort_unstable();
    names.dedup();
    let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
    // The keys' space is kept from one sort to the next (a chunk's keys are ~12 MB: fresh pages
    // would cost a page fault per 4 KiB every time).
    let mut keys = SORT_SPACE.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    keys.clear();
    keys.reserve(n);
    for (bi, b) in batches.iter().enumerate() {
        let (trip, veh, act) = (prim::<Int64Type>(b, c::TRIP).values(), prim::<Int64Type>(b, c::VEHICLE).values(), prim::<Int32Type>(b, c::ACT).values());
        let (part, off) = (prim::<Int32Type>(b, c::PARTITION).values(), prim::<Int64Type>(b, c::OFFSET).values());
        let is_new = b.column(c::IS_NEW).as_boolean();
        let d = b.column(c::TOPIC).as_dictionary::<Int32Type>();
        let rank: Vec<u32> = d.values().as_string::<i32>().iter().map(|t| names.binary_search(&t.unwrap_or("")).unwrap_or(0) as u32).collect();
        let tk = d.keys().values();
        for i in 0..b.num_rows() {
            keys.push((veh[i], trip[i], act[i], is_new.value(i), rank[tk[i] as usize], part[i], off[i], bi as u32, i as u32));
        }
    }
    keys.sort_unstable();
    let order = keys.iter().map(|k| (k.7, k.8)).collect();
    if let Ok(mut s) = SORT_SPACE.lock() {
        *s = keys;
    }
    order
}

/// A sort key of [`sort_order`]: vehicle, trip, act_time, is_new, topic rank, partition, offset,
/// then where the row is (batch, row).
type SortKey = (i64, i64, i32, bool, u32, i32, i64, u32, u32);

/// The space of the last [`sort_order`]'s keys, for the next one.
static SORT_SPACE: std::sync::Mutex<Vec<SortKey>> = std::sync::Mutex::new(Vec::new());

/// One run of work rows in merge order (see [`sort_order`]), an input of [`merge_write`].
pub struct Source {
    what: String,
    kind: Kind,
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, StandardError>> + Send>;

enum Kind {
    /// Batches held in memory and the order to read their rows in.
    Memory { batches: Vec<RecordBatch>, order: Vec<(u32, u32)>, pos: usize },
    /// Batches read one at a time, rows already in merge order (a spilled run, a live file).
    Sorted { batches: BatchIter, row: usize, len: usize },
}

impl Source {
    /// Work batches in any order, sorted here; `what` names them in errors.
    pub fn memory(what: impl Into<String>, batches: Vec<RecordBatch>) -> Result<Self, StandardError> {
        let what = what.into();
        for b in &batches {
            check_schema(&what, b)?;
        }
        let order = sort_order(&batches);
        Ok(Source { what, kind: Kind::Memory { batches, order, pos: 0 } })
    }

    /// Work batches whose rows are already in merge order, read as the merge needs them (the
    /// merge fails, naming `what`, if they are not).
    pub fn sorted(what: impl Into<String>, batches: impl Iterator<Item = Result<RecordBatch, StandardError>> + Send + 'static) -> Self {
        Source { what: what.into(), kind: Kind::Sorted { batches: Box::new(batches), row: 0, len: 0 } }
    }
}

/// The ordering columns of one work batch.
struct Keys {
    veh: ScalarBuffer<i64>,
    trip: ScalarBuffer<i64>,
    act: ScalarBuffer<i32>,
    is_new: BooleanBuffer,
    part: ScalarBuffer<i32>,
    off: ScalarBuffer<i64>,
    meters: Int64Array,
    bits: ScalarBuffer<u8>,
    topic: ScalarBuffer<i32>,
    /// Dictionary value → index into the merge's topic names.
    topic_ids: Vec<u32>,
}

impl Keys {
    fn of(b: &RecordBatch, topics: &mut Vec<String>) -> Self {
        let d = b.column(c::TOPIC).as_dictionary::<Int32Type>();
        let topic_ids = d
            .values()
            .as_string::<i32>()
            .iter()
            .map(|t| {
                let t = t.unwrap_or("");
                topics.iter().position(|x| x == t).unwrap_or_else(|| {
                    topics.push(t.to_string());
                    topics.len() - 1
                }) as u32
            })
            .collect();
        Keys {
            veh: prim::<Int64Type>(b, c::VEHICLE).values().clone(),
            trip: prim::<Int64Type>(b, c::TRIP).values().clone(),
            act: prim::<Int32Type>(b, c::ACT).values().clone(),
            is_new: b.column(c::IS_NEW).as_boolean().values().clone(),
            part: prim::<Int32Type>(b, c::PARTITION).values().clone(),
            off: prim::<Int64Type>(b, c::OFFSET).values().clone(),
            meters: prim::<Int64Type>(b, c::METERS).clone(),
            bits: prim::<arrow::datatypes::UInt8Type>(b, c::FLAGS).values().clone(),
            topic: d.keys().values().clone(),
            topic_ids,
        }
    }
}

/// The row a run is at: its ordering key, what the merge needs of it, and where it is.
#[derive(Clone, Copy)]
struct Head {
    veh: i64,
    trip: i64,
    act: i32,
    is_new: bool,
    topic: u32,
    part: i32,
    off: i64,
    meters: Option<i64>,
    bits: u8,
    /// Index into the merge's pinned batches.
    slot: u32,
    row: u32,
}

/// A run being merged.
struct Cursor {
    src: Source,
    /// Keys of the run's batches in memory (all of a `Memory` run, the current one of a `Sorted` run).
    keys: Vec<Keys>,
    /// Pinned slot of each of those batches.
    slots: Vec<u32>,
    head: Option<Head>,
}

impl Cursor {
    fn new(src: Source, pins: &mut Vec<RecordBatch>, topics: &mut Vec<String>) -> Self {
        let mut c = Cursor { src, keys: Vec::new(), slots: Vec::new(), head: None };
        if let Kind::Memory { batches, .. } = &c.src.kind {
            for b in batches {
                c.keys.push(Keys::of(b, topics));
                c.slots.push(pins.len() as u32);
                pins.push(b.clone());
            }
        }
        c
    }

    /// Moves to the run's next row (`head` = None at its end).
    fn advance(&mut self, pins: &mut Vec<RecordBatch>, topics: &mut Vec<String>) -> Result<(), StandardError> {
        let (k, row) = match &mut self.src.kind {
            Kind::Memory { order, pos, .. } => {
                let Some(&(bi, i)) = order.get(*pos) else {
                    self.head = None;
                    return Ok(());
                };
                *pos += 1;
                (bi as usize, i as usize)
            }
            Kind::Sorted { batches, row, len } => {
                while *row >= *len {
                    let Some(b) = batches.next() else {
                        self.head = None;
                        self.keys.clear();
                        return Ok(());
                    };
                    let b = b?;
                    check_schema(&self.src.what, &b)?;
                    (*row, *len) = (0, b.num_rows());
                    self.keys = vec![Keys::of(&b, topics)];
                    self.slots = vec![pins.len() as u32];
                    pins.push(b);
                }
                *row += 1;
                (0, *row - 1)
            }
        };
        let ks = &self.keys[k];
        let h = Head {
            veh: ks.veh[row],
            trip: ks.trip[row],
            act: ks.act[row],
            is_new: ks.is_new.value(row),
            topic: ks.topic_ids[ks.topic[row] as usize],
            part: ks.part[row],
            off: ks.off[row],
            meters: ks.meters.is_valid(row).then(|| ks.meters.value(row)),
            bits: ks.bits[row],
            slot: self.slots[k],
            row: row as u32,
        };
        if let Some(p) = self.head {
            if (h.veh, h.trip, h.act, h.is_new) < (p.veh, p.trip, p.act, p.is_new) {
                return Err(err(
                    &self.src.what,
                    format!("rows out of vehicle, trip, act_time order: vehicle {} trip {} act_time {} after vehicle {} trip {} act_time {}", h.veh, h.trip, h.act, p.veh, p.trip, p.act),
                ));
            }
        }
        self.head = Some(h);
        Ok(())
    }
}

/// Whether run `a`'s head comes before run `b`'s (ties: the earlier run).
fn before(cs: &[Cursor], topics: &[String], a: usize, b: usize) -> bool {
    let (Some(x), Some(y)) = (&cs[a].head, &cs[b].head) else { return cs[a].head.is_some() };
    (x.veh, x.trip, x.act, x.is_new)
        .cmp(&(y.veh, y.trip, y.act, y.is_new))
        .then_with(|| if x.topic == y.topic { std::cmp::Ordering::Equal } else { topics[x.topic as usize].cmp(&topics[y.topic as usize]) })
        .then_with(|| (x.part, x.off, a).cmp(&(y.part, y.off, b)))
        .is_lt()
}

fn sift_down(heap: &mut [usize], mut i: usize, cs: &[Cursor], topics: &[String]) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < heap.len() && before(cs, topics, heap[l], heap[m]) {
            m = l;
        }
        if r < heap.len() && before(cs, topics, heap[r], heap[m]) {
            m = r;
        }
        if m == i {
            return;
        }
        heap.swap(i, m);
        i = m;
    }
}

/// Merges running at once in one `etl standard` run, against the cores there are. A merge
/// always hands its slices to an encoder thread of its own ([`merge_write`]); while cores are
/// to spare (at most half of them busy merging, e.g. the last service date, or the only one of
/// a daily run) it goes on merging while the slice is encoded, otherwise it waits for each
/// slice, so busy threads never outnumber the cores.
#[derive(Clone, Debug)]
pub struct CoreShare {
    running: Arc<AtomicUsize>,
    cores: usize,
}

impl CoreShare {
    /// A share of `cores` cores, no merge running yet.
    pub fn new(cores: usize) -> Self {
        Self { running: Arc::new(AtomicUsize::new(0)), cores: cores.max(1) }
    }

    fn enter(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(&self.running)
    }

    /// Whether a merge can have a second core now.
    fn spare(&self) -> bool {
        self.running.load(Ordering::SeqCst) * 2 <= self.cores
    }
}

/// One merge counted in a [`CoreShare`] while it lives.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A slice of merged rows on its way to the encoder: rows (pinned slot, row) of `pins` and
/// each row's flag bits; `ack` when the merge waits for it to be written.
struct Slice {
    pins: Vec<RecordBatch>,
    refs: Vec<(u32, u32)>,
    bits: Vec<u8>,
    ack: bool,
}

/// The encoder side of [`merge_write`]: writes each slice's rows to the Parquet file being
/// filled, a new file every `file_rows` rows (slices never straddle two files).
fn encode_slices(rx: Receiver<Slice>, acks: SyncSender<()>, props: &WriterProperties, file_rows: usize) -> Result<Vec<(Vec<u8>, u64)>, StandardError> {
    let (mut files, mut file) = (Vec::new(), None::<FileEncoder>);
    for s in rx {
        let idx: Vec<(usize, usize)> = s.refs.iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
        let f = match &mut file {
            Some(f) => f,
            None => file.insert(FileEncoder::new(props)?),
        };
        // A merge that does not wait for its slices has a core to spare: two threads encode.
        f.write(&s.pins, &idx, &s.bits, !s.ack)?;
        drop(s.pins);
        if f.rows >= file_rows {
            files.push(file.take().expect("file").finish()?);
        }
        if s.ack && acks.send(()).is_err() {
            break;
        }
    }
    if let Some(f) = file.take() {
        files.push(f.finish()?);
    }
    Ok(files)
}

/// One Parquet file being written by [`encode_slices`], a row group at a time, each column
/// gathered ([`write_column`]) and encoded by its own column writer, so that the columns of a
/// slice can be shared out between two threads.
struct FileEncoder {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// Column writers of the row group being filled (one per field: no nested leaves).
    group: Option<Vec<ArrowColumnWriter>>,
    group_rows: usize,
    max_group_rows: usize,
    groups: usize,
    rows: usize,
}

impl FileEncoder {
    fn new(props: &WriterProperties) -> Result<Self, StandardError> {
        let w = ArrowWriter::try_new(Vec::new(), breadcrumbs_schema(), Some(props.clone())).map_err(|e| err("parquet writer", e))?;
        let (file, factory) = w.into_serialized_writer().map_err(|e| err("parquet writer", e))?;
        let max_group_rows = props.max_row_group_row_count().unwrap_or(1024 * 1024).max(1);
        Ok(Self { file, factory, group: None, group_rows: 0, max_group_rows, groups: 0, rows: 0 })
    }

    /// Writes rows `idx` of `ws` with flag bits `bits`, on two threads when `two`.
    fn write(&mut self, ws: &[RecordBatch], idx: &[(usize, usize)], bits: &[u8], two: bool) -> Result<(), StandardError> {
        let schema = breadcrumbs_schema();
        let mut off = 0;
        while off < idx.len() {
            let n = (idx.len() - off).min(self.max_group_rows - self.group_rows);
            let (rows, row_bits) = (Rows::new(&idx[off..off + n]), &bits[off..off + n]);
            let writers = match &mut self.group {
                Some(w) => w,
                None => self.group.insert(self.factory.create_column_writers(self.groups).map_err(|e| err("parquet row group", e))?),
            };
            if writers.len() != schema.fields().len() {
                return Err(err("parquet row group", format!("{} column writers for {} fields", writers.len(), schema.fields().len())));
            }
            let column = |(i, w): (usize, &mut ArrowColumnWriter)| -> Result<(), StandardError> {
                let mut write = |col: &ArrayRef| -> Result<(), StandardError> {
                    for leaf in compute_leaves(schema.field(i), col).map_err(|e| err("parquet levels", e))? {
                        w.write(&leaf).map_err(|e| err("parquet write", e))?;
                    }
                    Ok(())
                };
                // Long stretches go to the writer as slices of the runs' own columns: no copy.
                match rows.slices(ws, i) {
                    Some(slices) => slices.iter().try_for_each(&mut write),
                    None => write(&write_column(ws, &rows, Some(row_bits), i)?),
                }
            };
            if two {
                let queue = std::sync::Mutex::new(writers.iter_mut().enumerate());
                let drain = || -> Result<(), StandardError> {
                    loop {
                        let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
                        match next {
                            Some(job) => column(job)?,
                            None => return Ok(()),
                        }
                    }
                };
                std::thread::scope(|scope| {
                    let helper = scope.spawn(drain);
                    let mine = drain();
                    let theirs = helper.join().map_err(|_| err("Parquet encoder", "a column encoding thread panicked"))?;
                    mine.and(theirs)
                })?;
            } else {
                writers.iter_mut().enumerate().try_for_each(column)?;
            }
            self.group_rows += n;
            off += n;
            if self.group_rows >= self.max_group_rows {
                self.close_group()?;
            }
        }
        self.rows += idx.len();
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), StandardError> {
        if let Some(writers) = self.group.take() {
            let mut rg = self.file.next_row_group().map_err(|e| err("parquet row group", e))?;
            for w in writers {
                w.close().and_then(|chunk| chunk.append_to_row_group(&mut rg)).map_err(|e| err("parquet column chunk", e))?;
            }
            rg.close().map_err(|e| err("parquet row group", e))?;
            self.groups += 1;
            self.group_rows = 0;
        }
        Ok(())
    }

    /// The file's bytes and rows.
    fn finish(mut self) -> Result<(Vec<u8>, u64), StandardError> {
        self.close_group()?;
        let rows = self.rows as u64;
        Ok((self.file.into_inner().map_err(|e| err("parquet close", e))?, rows))
    }
}

/// The merge side of [`merge_write`]: collects the next slice, cut at `slice_rows` rows and at
/// file boundaries, and sends it to the encoder.
struct Out<'a> {
    file_rows: usize,
    slice_rows: usize,
    in_file: usize,
    refs: Vec<(u32, u32)>,
    bits: Vec<u8>,
    tx: SyncSender<Slice>,
    acks: Receiver<()>,
    share: &'a CoreShare,
}

/// The encoder has stopped (its error is what to report).
struct EncoderGone;

impl Out<'_> {
    fn full(&self) -> bool {
        self.refs.len() >= self.slice_rows.min(self.file_rows - self.in_file)
    }

    /// Sends the slice (rows of `pins`), waiting for it to be written unless a core is spare.
    fn send(&mut self, pins: Vec<RecordBatch>) -> Result<(), EncoderGone> {
        if self.refs.is_empty() {
            return Ok(());
        }
        self.in_file = (self.in_file + self.refs.len()) % self.file_rows;
        let cap = self.slice_rows.min(self.file_rows);
        let refs = std::mem::replace(&mut self.refs, Vec::with_capacity(cap));
        let bits = std::mem::replace(&mut self.bits, Vec::with_capacity(cap));
        let ack = !self.share.spare();
        self.tx.send(Slice { pins, refs, bits, ack }).map_err(|_| EncoderGone)?;
        if ack {
            self.acks.recv().map_err(|_| EncoderGone)?;
        }
        Ok(())
    }
}

/// What [`merge_write`] made of one service date.
pub struct DateFiles {
    /// Parquet files (bytes, rows), at most `file_rows` rows each.
    pub files: Vec<(Vec<u8>, u64)>,
    /// Duplicate readings among the new rows, as rejects.
    pub dups: Vec<RejectRow>,
    /// New rows kept.
    pub new_rows: u64,
    /// New rows kept with `meters_backwards`.
    pub new_backwards: u64,
}

/// Merges the runs of one service date (k-way, in merge order) and writes the result as
/// Parquet files of at most `file_rows` rows, `slice_rows` rows at a time. Rows already in the
/// lake (`is_new` = false) are all kept; a new row that repeats a reading (same vehicle, trip,
/// act_time and values) of an earlier row — existing first, then by topic, partition, offset —
/// becomes a `duplicate` reject; `meters_backwards` is recomputed along each trip.
///
/// Memory: the `Memory` runs, one batch of each `Sorted` run and one output slice, whatever
/// the number of rows of the date.
pub fn merge_write(sources: Vec<Source>, date: NaiveDate, file_rows: usize, slice_rows: usize, props: &WriterProperties, share: &CoreShare) -> Result<DateFiles, StandardError> {
    let _running = share.enter();
    let file_rows = file_rows.max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Slice>(1);
        let (ack_tx, acks) = std::sync::mpsc::sync_channel::<()>(1);
        let encoder = std::thread::Builder::new()
            .name("etl-encode".into())
            .spawn_scoped(scope, move || encode_slices(rx, ack_tx, props, file_rows))
            .map_err(|e| err("starting the Parquet encoder thread", e))?;
        let out = Out { file_rows, slice_rows: slice_rows.max(1), in_file: 0, refs: Vec::new(), bits: Vec::new(), tx, acks, share };
        let merged = merge_rows(sources, date, out);
        let files = encoder.join().map_err(|_| err("Parquet encoder", "the encoder thread panicked"))?;
        // An encoder error stops the merge too (EncoderGone): report the encoder's.
        let (mut res, files) = match (merged, files) {
            (Ok(Ok(res)), Ok(files)) => (res, files),
            (Err(e), _) => return Err(e),
            (Ok(Err(EncoderGone)), Err(e)) | (Ok(Ok(_)), Err(e)) => return Err(e),
            (Ok(Err(EncoderGone)), Ok(_)) => return Err(err("Parquet encoder", "the encoder stopped early")),
        };
        res.files = files;
        Ok(res)
    })
}

/// The k-way merge of [`merge_write`], handing slices to `out`.
fn merge_rows(sources: Vec<Source>, date: NaiveDate, mut out: Out<'_>) -> Result<Result<DateFiles, EncoderGone>, StandardError> {
    let (mut topics, mut pins) = (Vec::new(), Vec::new());
    let mut cs: Vec<Cursor> = Vec::with_capacity(sources.len());
    for s in sources {
        let mut c = Cursor::new(s, &mut pins, &mut topics);
        c.advance(&mut pins, &mut topics)?;
        cs.push(c);
    }
    let mut heap: Vec<usize> = (0..cs.len()).filter(|i| cs[*i].head.is_some()).collect();
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, i, &cs, &topics);
    }
    let mut res = DateFiles { files: Vec::new(), dups: Vec::new(), new_rows: 0, new_backwards: 0 };
    let mb = flag_bit(rules::METERS_BACKWARDS);
    // Rows kept so far with the current (vehicle, trip, act_time), and the last kept meters.
    let mut group: Vec<(u32, u32)> = Vec::new();
    let mut group_key = None;
    let mut prev: Option<(i64, i64, i64)> = None;
    while let Some(&top) = heap.first() {
        let Some(h) = cs[top].head else { break };
        if group_key != Some((h.veh, h.trip, h.act)) {
            group.clear();
            group_key = Some((h.veh, h.trip, h.act));
        }
        let first = if h.is_new && !group.is_empty() {
            let v = Values::of(&pins[h.slot as usize]);
            group.iter().copied().find(|(s, r)| Values::of(&pins[*s as usize]).same(*r as usize, &v, h.row as usize))
        } else {
            None
        };
        if let Some((s, r)) = first {
            res.dups.push(duplicate(&pins[h.slot as usize], h.row as usize, &pins[s as usize], r as usize, date));
        } else {
            group.push((h.slot, h.row));
            let mut bits = h.bits & !mb;
            match h.meters {
                Some(m) => {
                    if prev.is_some_and(|(pv, pt, pm)| pv == h.veh && pt == h.trip && m < pm) {
                        bits |= mb;
                    }
                    prev = Some((h.veh, h.trip, m));
                }
                None if prev.is_some_and(|(pv, pt, _)| pv != h.veh || pt != h.trip) => prev = None,
                None => {}
            }
            if h.is_new {
                res.new_rows += 1;
                res.new_backwards += u64::from(bits & mb != 0);
            }
            out.refs.push((h.slot, h.row));
            out.bits.push(bits);
        }
        cs[top].advance(&mut pins, &mut topics)?;
        if cs[top].head.is_none() {
            heap.swap_remove(0);
        }
        sift_down(&mut heap, 0, &cs, &topics);
        if out.full() {
            // Unpin what no run, and no row of the current group, still points at; the slice
            // goes with the old pins.
            let old = std::mem::take(&mut pins);
            let mut map: Vec<Option<u32>> = vec![None; old.len()];
            let mut pin = |s: &mut u32| {
                *s = *map[*s as usize].get_or_insert_with(|| {
                    pins.push(old[*s as usize].clone());
                    (pins.len() - 1) as u32
                })
            };
            group.iter_mut().for_each(|g| pin(&mut g.0));
            for c in &mut cs {
                c.slots.iter_mut().for_each(&mut pin);
                if let Some(h) = &mut c.head {
                    pin(&mut h.slot);
                }
            }
            if let Err(gone) = out.send(old) {
                return Ok(Err(gone));
            }
        }
    }
    Ok(out.send(pins).map(|()| res))
}

/// The `duplicate` reject of row `i` of `w`, a repeat of row `j` of `first`.
fn duplicate(w: &RecordBatch, i: usize, first: &RecordBatch, j: usize, date: NaiveDate) -> RejectRow {
    let i64v = |col: usize| {
        let a = prim::<Int64Type>(w, col);
        a.is_valid(i).then(|| a.value(i))
    };
    let f64v = |col: usize| {
        let a = prim::<Float64Type>(w, col);
        a.is_valid(i).then(|| a.value(i))
    };
    let sats = prim::<Int32Type>(w, c::SATS);
    let act = prim::<Int32Type>(w, c::ACT).value(i);
    let kts = w.column(c::KAFKA_TS).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    let payload = serde_json::json!({
        "EVENT_NO_TRIP": i64v(c::TRIP), "EVENT_NO_STOP": i64v(c::STOP), "VEHICLE_ID": i64v(c::VEHICLE),
        "OPD_DATE": date.to_string(), "ACT_TIME": act, "METERS": i64v(c::METERS),
        "GPS_LATITUDE": f64v(c::LAT), "GPS_LONGITUDE": f64v(c::LON), "GPS_SATELLITES": sats.is_valid(i).then(|| sats.value(i)), "GPS_HDOP": f64v(c::HDOP),
    });
    RejectRow {
        message: format!(
            "same vehicle {}, service date {date}, act_time {act} and values as {} partition {} offset {}",
            i64v(c::VEHICLE).unwrap_or_default(),
            dict_str(first.column(c::TOPIC), j).unwrap_or_default(),
            prim::<Int32Type>(first, c::PARTITION).value(j),
            prim::<Int64Type>(first, c::OFFSET).value(j)
        ),
        topic: Arc::from(dict_str(w.column(c::TOPIC), i).unwrap_or_default().as_str()),
        raw_key: Arc::from(dict_str(w.column(c::RAW_KEY), i).unwrap_or_default().as_str()),
        partition: prim::<Int32Type>(w, c::PARTITION).value(i),
        offset: prim::<Int64Type>(w, c::OFFSET).value(i),
        kafka_ts: kts.is_valid(i).then(|| kts.value(i)),
        service_date: Some(date),
        rule: rules::DUPLICATE,
        payload: serde_json::to_vec(&payload).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breadcrumb;

    fn bc(vehicle: i64, trip: i64, act: i32, meters: i64) -> Breadcrumb {
        let payload = format!(
            r#"{{"EVENT_NO_TRIP":{trip},"VEHICLE_ID":{vehicle},"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":{act},"METERS":{meters},"GPS_LATITUDE":45.5,"GPS_LONGITUDE":-122.6,"GPS_HDOP":9.0}}"#
        );
        breadcrumb::parse(payload.as_bytes()).unwrap()
    }

    fn batch(rows: &[(i64, i64, i32, i64, i32, i64)], raw_key: &str) -> RecordBatch {
        batch_of("t", rows, raw_key)
    }

    fn batch_of(topic: &str, rows: &[(i64, i64, i32, i64, i32, i64)], raw_key: &str) -> RecordBatch {
        let mut b = WorkBuilder::default();
        for (v, t, a, m, p, o) in rows {
            b.push(&bc(*v, *t, *a, *m), *p, *o, Some(1));
        }
        b.finish(topic, raw_key).unwrap()
    }

    fn column_i64(b: &RecordBatch, name: &str) -> Vec<i64> {
        b.column_by_name(name).unwrap().as_primitive::<Int64Type>().values().to_vec()
    }

    /// Merges `sources` and reads back every file written, in order.
    fn merged(sources: Vec<Source>, file_rows: usize, slice_rows: usize) -> (RecordBatch, DateFiles) {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let props = crate::standard::writer_props(3, 1024, true);
        let m = merge_write(sources, d, file_rows, slice_rows, &props, &CoreShare::new(2)).unwrap();
        let mut back = Vec::new();
        for (bytes, rows) in &m.files {
            let b = crate::standard::read_parquet(bytes::Bytes::from(bytes.clone()), "t").unwrap();
            assert_eq!(b.iter().map(RecordBatch::num_rows).sum::<usize>() as u64, *rows);
            back.extend(b);
        }
        (arrow::compute::concat_batches(&breadcrumbs_schema(), &back).unwrap(), m)
    }

    fn flag_lists(out: &RecordBatch) -> Vec<Vec<String>> {
        let flags = out.column_by_name("quality_flags").unwrap().as_list::<i32>();
        (0..out.num_rows()).map(|i| flags.value(i).as_string::<i32>().iter().flatten().map(str::to_string).collect()).collect()
    }

    #[test]
    fn merge_dedups_sorts_and_flags_backwards_meters() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        // Already in the lake: vehicle 2 trip 10 at 100 s, from offset 0.
        let existing = to_work(&from_work(&[batch(&[(2, 10, 100, 50, 0, 0)], "raw/t/old")], &[(0, 0)], None).unwrap(), false).unwrap();
        let new = batch(&[(2, 10, 105, 40, 0, 3), (1, 5, 100, 10, 0, 2), (2, 10, 100, 50, 1, 7), (2, 10, 100, 50, 0, 1), (2, 10, 100, 51, 0, 4)], "raw/t/new");
        let (out, m) = merged(vec![Source::memory("existing", vec![existing]).unwrap(), Source::memory("new", vec![new]).unwrap()], 100, 64);
        assert_eq!(column_i64(&out, "vehicle_id"), vec![1, 2, 2, 2]);
        assert_eq!(column_i64(&out, "meters"), vec![10, 50, 51, 40], "same time, other values: kept after the existing reading");
        assert_eq!(column_i64(&out, "kafka_offset"), vec![2, 0, 4, 3]);
        // The two repeats of the existing reading are rejects that name it.
        assert_eq!(m.dups.len(), 2);
        assert!(m.dups.iter().all(|r| r.rule == rules::DUPLICATE && r.service_date == Some(d) && r.message.contains("partition 0 offset 0")));
        assert_eq!(m.dups.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>(), vec![(0, 1), (1, 7)]);
        assert_eq!(m.new_rows, 3);
        // meters 51 → 40 goes backwards within the trip; hdop 9 is flagged on every row.
        let f = flag_lists(&out);
        assert_eq!(f[3], vec![rules::HDOP_HIGH.to_string(), rules::METERS_BACKWARDS.to_string()]);
        assert_eq!(f[2], vec![rules::HDOP_HIGH.to_string()]);
        assert_eq!(m.new_backwards, 1);
        // Idempotent: merging the result again changes nothing and rejects nothing.
        let (again, m2) = merged(vec![Source::sorted("live", std::iter::once(to_work(&out, false)))], 100, 64);
        assert!(m2.dups.is_empty());
        assert_eq!(again, out);
    }

    #[test]
    fn files_are_cut_by_rows_and_read_back_with_the_breadcrumbs_schema() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let rows: Vec<_> = (0..10).map(|i| (7, 8, 100 + i, 10 * i as i64, 0, i as i64)).collect();
        let props = crate::standard::writer_props(3, 4, true);
        let m = merge_write(vec![Source::memory("new", vec![batch(&rows, "raw/t/k")]).unwrap()], d, 4, 3, &props, &CoreShare::new(2)).unwrap();
        assert_eq!(m.files.iter().map(|f| f.1).collect::<Vec<_>>(), vec![4, 4, 2]);
        let back = crate::standard::read_parquet(bytes::Bytes::from(m.files[1].0.clone()), "t").unwrap();
        assert_eq!(back[0].schema(), breadcrumbs_schema());
        assert_eq!(column_i64(&back[0], "kafka_offset"), vec![4, 5, 6, 7]);
        assert_eq!(back[0].column_by_name("raw_key").unwrap().as_string::<i32>().value(0), "raw/t/k");
    }

    #[test]
    fn row_groups_are_cut_across_slices_and_both_encoding_modes_write_the_same_bytes() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let rows: Vec<_> = (0..10).map(|i| (7, 8 + i as i64 / 6, 100 + i, 10 * i as i64, 0, i as i64)).collect();
        let props = crate::standard::writer_props(3, 4, true);
        let write = |share: &CoreShare| merge_write(vec![Source::memory("new", vec![batch(&rows, "raw/t/k")]).unwrap()], d, 100, 3, &props, share).unwrap();
        // One core: each slice is encoded while the merge waits, one column after another.
        // Two: the merge goes on while two threads share the slice's columns out.
        let (one, two) = (write(&CoreShare::new(1)), write(&CoreShare::new(2)));
        assert_eq!(one.files.len(), 1);
        assert_eq!(one.files[0].0, two.files[0].0, "same file whichever way it was encoded");
        let meta = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(one.files[0].0.clone())).unwrap();
        use parquet::file::reader::FileReader;
        let md = meta.metadata();
        assert_eq!(md.row_groups().iter().map(|g| g.num_rows()).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert!(md.row_groups().iter().all(|g| g.sorting_columns().is_some_and(|c| c.len() == 3)));
        // Bounds where they skip row groups (the sort keys), none on the lineage strings.
        let col = |name: &str| md.file_metadata().schema_descr().columns().iter().position(|c| c.name() == name).unwrap();
        let g = md.row_group(0);
        assert!(["vehicle_id", "trip_id", "act_time", "kafka_offset"].iter().all(|c| g.column(col(c)).statistics().is_some_and(|s| s.min_bytes_opt().is_some())));
        assert!(["raw_key", "encoding"].iter().all(|c| g.column(col(c)).statistics().is_none_or(|s| s.min_bytes_opt().is_none())));
        let back = crate::standard::read_parquet(bytes::Bytes::from(one.files[0].0.clone()), "t").unwrap();
        let all = arrow::compute::concat_batches(&breadcrumbs_schema(), &back).unwrap();
        assert_eq!(column_i64(&all, "kafka_offset"), (0..10).collect::<Vec<_>>());
        assert_eq!(column_i64(&all, "trip_id"), vec![8, 8, 8, 8, 8, 8, 9, 9, 9, 9]);
    }

    #[test]
    fn repeated_strings_go_to_the_writer_as_dictionaries_and_read_back_as_plain_strings() {
        let a = batch_of("topic-a", &[(1, 5, 100, 10, 0, 1), (3, 5, 100, 10, 0, 2)], "raw/topic-a/one");
        let b = batch_of("topic-b", &[(2, 5, 100, 10, 4, 9)], "raw/topic-b/two");
        let slice = from_work(&[a.clone(), b.clone()], &[(0, 0), (1, 0), (0, 1)], None).unwrap();
        assert_eq!(slice.schema(), write_schema());
        assert!(matches!(slice.column_by_name("raw_key").unwrap().data_type(), DataType::Dictionary(..)));
        let (out, _) = merged(vec![Source::memory("a", vec![a]).unwrap(), Source::memory("b", vec![b]).unwrap()], 100, 2);
        assert_eq!(out.schema(), breadcrumbs_schema());
        let strings = |name: &str| -> Vec<String> { out.column_by_name(name).unwrap().as_string::<i32>().iter().map(|v| v.unwrap().to_string()).collect() };
        assert_eq!(strings("kafka_topic"), vec!["topic-a", "topic-b", "topic-a"]);
        assert_eq!(strings("raw_key"), vec!["raw/topic-a/one", "raw/topic-b/two", "raw/topic-a/one"]);
        assert_eq!(strings("encoding"), vec!["json"; 3]);
    }

    #[test]
    fn a_spent_batch_becomes_an_empty_builder_on_the_same_buffers() {
        let spent = batch(&[(1, 5, 100, 10, 0, 1), (2, 6, 101, 11, 0, 2)], "raw/t/a");
        let (trip, meters) = (spent.column(c::TRIP).to_data().buffers()[0].as_ptr(), spent.column(c::METERS).to_data().buffers()[0].as_ptr());
        let mut w = WorkBuilder::from_spent(spent).expect("nothing else holds the batch");
        assert!(w.is_empty());
        assert_eq!((w.trip.as_ptr().cast::<u8>(), w.meters.values_slice().as_ptr().cast::<u8>()), (trip, meters), "the buffers are reused, not copied");
        // Nothing of the old rows shows through: values, nulls, lineage.
        w.push(&bc(3, 7, 102, 12), 1, 9, None);
        let b = w.finish("t", "raw/t/b").unwrap();
        assert_eq!((column_i64(&b, "vehicle_id"), column_i64(&b, "meters"), column_i64(&b, "kafka_offset")), (vec![3], vec![12], vec![9]));
        assert!(b.column(c::KAFKA_TS).is_null(0) && b.column(c::STOP).is_null(0));
        assert_eq!(dict_str(b.column(c::RAW_KEY), 0).as_deref(), Some("raw/t/b"));
        // A batch someone else still holds is left alone.
        let shared = batch(&[(1, 5, 100, 10, 0, 1)], "raw/t/a");
        let holder = shared.clone();
        assert!(WorkBuilder::from_spent(shared).is_none());
        assert_eq!(column_i64(&holder, "vehicle_id"), vec![1]);
    }

    /// A reading: (vehicle, trip, act_time, meters, partition, offset, topic, existing).
    type Reading = (i64, i64, i32, i64, i32, i64, &'static str, bool);

    /// What the merge must produce, computed the slow, obvious way: sort everything, then walk
    /// each (vehicle, trip, act_time) group keeping existing rows and the first of each reading.
    fn oracle(all: &[Reading]) -> (Vec<(i64, i64, i32, &'static str, i32, i64, bool)>, Vec<(i32, i64)>) {
        let mut v: Vec<_> = all.to_vec();
        v.sort_by_key(|r| (r.0, r.1, r.2, !r.7, r.6, r.4, r.5));
        let (mut kept, mut dups): (Vec<Reading>, Vec<(i32, i64)>) = (Vec::new(), Vec::new());
        for r in v {
            let repeat = r.7 == false && kept.iter().any(|k| (k.0, k.1, k.2, k.3) == (r.0, r.1, r.2, r.3));
            if repeat {
                dups.push((r.4, r.5));
            } else {
                kept.push(r);
            }
        }
        let mut out = Vec::new();
        let mut prev: Option<(i64, i64, i64)> = None;
        for k in &kept {
            let back = prev.is_some_and(|(v, t, m)| v == k.0 && t == k.1 && k.3 < m);
            prev = Some((k.0, k.1, k.3));
            out.push((k.0, k.1, k.2, k.6, k.4, k.5, back));
        }
        dups.sort();
        (out, dups)
    }

    #[test]
    fn external_merge_of_any_runs_equals_one_sort_of_everything() {
        // A small deterministic generator: many repeated readings, two topics, existing rows.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..40 {
            let n = 1 + rnd(300) as usize;
            let mut all: Vec<Reading> = Vec::new();
            for i in 0..n {
                let topic = if rnd(4) == 0 { "b" } else { "a" };
                all.push((1 + rnd(3) as i64, 10 + rnd(2) as i64, 100 + rnd(12) as i32, rnd(4) as i64 * 10, rnd(3) as i32, i as i64, topic, rnd(5) == 0));
            }
            // Existing rows come from one earlier merge, so none repeats another reading.
            let mut seen = std::collections::HashSet::new();
            all.retain(|r| !r.7 || seen.insert((r.0, r.1, r.2, r.3)));
            let to_batch = |rows: &[Reading]| -> Vec<RecordBatch> {
                let mut out = Vec::new();
                for topic in ["a", "b"] {
                    let part: Vec<_> = rows.iter().filter(|r| r.6 == topic).map(|r| (r.0, r.1, r.2, r.3, r.4, r.5)).collect();
                    if !part.is_empty() {
                        out.push(batch_of(topic, &part, &format!("raw/{topic}/x")));
                    }
                }
                out
            };
            let existing: Vec<Reading> = all.iter().copied().filter(|r| r.7).collect();
            let new: Vec<Reading> = all.iter().copied().filter(|r| !r.7).collect();
            let mut sources = Vec::new();
            if !existing.is_empty() {
                // The live file: sorted, every row existing.
                let b = to_batch(&existing);
                let order = sort_order(&b);
                let live = to_work(&from_work(&b, &order, None).unwrap(), false).unwrap();
                let chunk = 1 + rnd(40) as usize;
                let parts: Vec<_> = (0..live.num_rows()).step_by(chunk).map(|o| Ok(live.slice(o, chunk.min(live.num_rows() - o)))).collect();
                sources.push(Source::sorted("live", parts.into_iter()));
            }
            // New rows split into runs: some spilled (sorted, read in small batches), the last kept in memory.
            let runs = 1 + rnd(5) as usize;
            let mut cut: Vec<usize> = (0..runs - 1).map(|_| rnd(new.len() as u64 + 1) as usize).collect();
            cut.sort();
            cut.push(new.len());
            let mut from = 0;
            for (ri, to) in cut.into_iter().enumerate() {
                let b = to_batch(&new[from..to]);
                from = to;
                if ri == runs - 1 {
                    sources.push(Source::memory("memory", b).unwrap());
                } else {
                    let order = sort_order(&b);
                    let step = 1 + rnd(30) as usize;
                    let spilled: Vec<_> = order.chunks(step).map(|s| take_work(&b, s)).collect();
                    sources.push(Source::sorted(format!("run {ri}"), spilled.into_iter()));
                }
            }
            let (file_rows, slice_rows) = (1 + rnd(200) as usize, 1 + rnd(9) as usize);
            let (out, m) = merged(sources, file_rows, slice_rows);
            let (want, want_dups) = oracle(&all);
            let topics = out.column_by_name("kafka_topic").unwrap().as_string::<i32>();
            let parts = out.column_by_name("kafka_partition").unwrap().as_primitive::<Int32Type>();
            let acts = out.column_by_name("act_time").unwrap().as_primitive::<Int32Type>();
            let (veh, trip, off) = (column_i64(&out, "vehicle_id"), column_i64(&out, "trip_id"), column_i64(&out, "kafka_offset"));
            let flags = flag_lists(&out);
            let got: Vec<_> = (0..out.num_rows())
                .map(|i| {
                    let topic = if topics.value(i) == "a" { "a" } else { "b" };
                    (veh[i], trip[i], acts.value(i), topic, parts.value(i), off[i], flags[i].iter().any(|f| f == rules::METERS_BACKWARDS))
                })
                .collect();
            assert_eq!(got, want, "case {case}: {n} readings, file_rows {file_rows}, slice_rows {slice_rows}");
            let mut dups: Vec<_> = m.dups.iter().map(|r| (r.partition, r.offset)).collect();
            dups.sort();
            assert_eq!(dups, want_dups, "case {case}");
            assert_eq!(m.new_rows as usize, want.len() - existing.len());
            assert!(m.files.iter().all(|f| f.1 as usize <= file_rows));
        }
    }

    #[test]
    fn rows_in_long_stretches_are_copied_as_ranges_with_the_same_result_as_row_by_row() {
        let a = batch_of("a", &(0..40).map(|i| (1, 5, 100 + i, 10 * i as i64, 0, i as i64)).collect::<Vec<_>>(), "raw/a/x");
        let b = batch_of("b", &(0..40).map(|i| (2, 6, 100 + i, 10 * i as i64, 1, 100 + i as i64)).collect::<Vec<_>>(), "raw/b/y");
        let ws = [a, b];
        let long: Vec<(usize, usize)> = (0..20).map(|r| (0, r)).chain((5..35).map(|r| (1, r))).chain((20..40).map(|r| (0, r))).collect();
        let short: Vec<(usize, usize)> = (0..40).map(|r| (r % 2, r)).collect();
        for (name, idx) in [("long", &long), ("short", &short)] {
            let rows = Rows::new(idx);
            assert_eq!(rows.stretches.as_ref().map(Vec::len), (name == "long").then_some(3), "{name}");
            for i in 0..ws[0].num_columns() {
                let arrays: Vec<&dyn Array> = ws.iter().map(|w| w.column(i).as_ref()).collect();
                let want = arrow::compute::interleave(&arrays, idx).unwrap();
                assert_eq!(rows.gather(&arrays).unwrap().as_ref(), want.as_ref(), "{name}: column {i}");
            }
        }
        // The writer's slices hold the same rows as the gathered column, in order.
        let rows = Rows::new(&long);
        let built = from_work(&ws, &long.iter().map(|&(a, r)| (a as u32, r as u32)).collect::<Vec<_>>(), None).unwrap();
        let off = write_schema().index_of("kafka_offset").unwrap();
        let slices = rows.slices(&ws, off).expect("long stretches of a column in its write type");
        assert_eq!(slices.len(), 3);
        assert_eq!(arrow::compute::concat(&slices.iter().map(|s| s.as_ref()).collect::<Vec<_>>()).unwrap().as_ref(), built.column(off).as_ref());
        assert!(rows.slices(&ws, c::FLAGS).is_none(), "flags are rebuilt, never sliced");
        // A row past the end is an error, as row by row, not a panic.
        let past: Vec<(usize, usize)> = (0..20).map(|r| (0, r + 30)).collect();
        let arrays: Vec<&dyn Array> = ws.iter().map(|w| w.column(0).as_ref()).collect();
        assert!(Rows::new(&past).gather(&arrays).is_err());
        assert!(Rows::new(&past).slices(&ws, off).is_none());
        let past_short: Vec<(usize, usize)> = (0..20).map(|r| (r % 2, r * 2 + 2)).collect();
        assert!(Rows::new(&past_short).stretches.is_none());
        assert!(Rows::new(&past_short).gather(&arrays).is_err());
    }

    #[test]
    fn a_merge_of_long_runs_writes_each_stretch_and_reads_back_in_order() {
        // Two runs that take turns in stretches of 50 rows (as runs of Kafka offset spans do),
        // with meters going backwards inside a stretch so flags are set row by row.
        let rows = |first: i64, p: i32| -> Vec<_> {
            (0..200).map(move |i| (1, 10 + (i as i64 / 50) * 2 + first, 100 + i, if i == 70 { 0 } else { 10 * i as i64 }, p, i as i64)).collect::<Vec<_>>()
        };
        let (a, b) = (batch_of("t", &rows(0, 0), "raw/t/a"), batch_of("t", &rows(1, 1), "raw/t/b"));
        let (out, m) = merged(vec![Source::memory("a", vec![a]).unwrap(), Source::memory("b", vec![b]).unwrap()], 1000, 64);
        assert_eq!(out.num_rows(), 400);
        assert_eq!(m.new_rows, 400);
        let trips = column_i64(&out, "trip_id");
        assert_eq!(trips, (0..8).flat_map(|t| std::iter::repeat_n(10 + t, 50)).collect::<Vec<_>>());
        let parts = out.column_by_name("kafka_partition").unwrap().as_primitive::<Int32Type>();
        assert_eq!((0..400).map(|i| parts.value(i)).collect::<Vec<_>>(), (0..8).flat_map(|t| std::iter::repeat_n(t % 2, 50)).collect::<Vec<_>>());
        let flags = flag_lists(&out);
        let backwards: Vec<usize> = (0..400).filter(|&i| flags[i].iter().any(|f| f == rules::METERS_BACKWARDS)).collect();
        // Meters fall to 0 at row 70 of each run (trips 12 and 13, 20 rows into their stretches).
        assert_eq!(backwards, vec![100 + 20, 150 + 20]);
        assert_eq!(m.new_backwards, 2);
    }

    #[test]
    fn a_run_out_of_order_is_an_error_naming_it() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let b = batch(&[(2, 10, 100, 50, 0, 0), (1, 10, 100, 50, 0, 1)], "raw/t/k");
        let props = crate::standard::writer_props(3, 1024, true);
        let e = merge_write(vec![Source::sorted("live file standard/x.parquet", std::iter::once(Ok(b)))], d, 100, 64, &props, &CoreShare::new(2)).err().expect("out of order");
        let msg = e.to_string();
        assert!(msg.contains("live file standard/x.parquet") && msg.contains("vehicle 1 trip 10 act_time 100 after vehicle 2"), "{msg}");
    }
}
