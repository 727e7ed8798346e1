//! The columnar working set of `etl standard`: parsed breadcrumbs go straight into Arrow
//! columns (no per-row structs), and each service date is merged in one pass: sort by
//! vehicle / trip / time / lineage, drop duplicate readings, recompute per-trip flags, and
//! turn the survivors into the `breadcrumbs` schema slice by slice. Pure transformations:
//! no lake, no Kafka, no clock.
//!
//! ```text
//!  payloads ──parse──► WorkBuilder (per object, per service date) ──finish──► work batch ─┐
//!  live Parquet file of the date ──────────────────────────────────────────► to_work ────┤
//!                                                                                        ▼
//!        merge: sort keys over all batches (no concat), dedupe (→ duplicate rejects), flags
//!                                                                                        │
//!        write_date: interleave(kept[slice]) → from_work → ArrowWriter, one file per `file_rows`
//! ```
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
use chrono::NaiveDate;
use std::sync::{Arc, OnceLock};

use crate::breadcrumb::{rules, Breadcrumb, ENCODINGS};
use crate::standard::{breadcrumbs_schema, RejectRow, StandardError};

/// Column positions (shared by the work and the `breadcrumbs` schema up to `RAW_KEY`).
mod c {
    pub const TRIP: usize = 0;
    pub const STOP: usize = 1;
    pub const VEHICLE: usize = 2;
    pub const ACT: usize = 3;
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
        let encoding = ENCODINGS.iter().position(|e| *e == bc.encoding).unwrap_or(0);
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

/// Rows `idx` (batch, row) of work batches, in that order, in the `breadcrumbs` schema.
pub fn from_work(ws: &[RecordBatch], idx: &[(u32, u32)]) -> Result<RecordBatch, StandardError> {
    let what = "building breadcrumbs batch";
    let idx: Vec<(usize, usize)> = idx.iter().map(|(b, r)| (*b as usize, *r as usize)).collect();
    let schema = breadcrumbs_schema();
    let mut cols = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let arrays: Vec<&dyn Array> = ws.iter().map(|w| w.column(i).as_ref()).collect();
        let taken = arrow::compute::interleave(&arrays, &idx).map_err(|e| err(what, e))?;
        let col = if i == c::FLAGS {
            let bits = taken.as_primitive::<arrow::datatypes::UInt8Type>();
            let mut lb = ListBuilder::with_capacity(StringBuilder::new(), bits.len());
            for b in bits.values() {
                for r in flags_of(*b) {
                    lb.values().append_value(r);
                }
                lb.append(true);
            }
            let list: ListArray = lb.finish();
            arrow::compute::cast(&list, f.data_type()).map_err(|e| err(what, e))?
        } else if taken.data_type() != f.data_type() {
            arrow::compute::cast(&taken, f.data_type()).map_err(|e| err(what, e))?
        } else {
            taken
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema, cols).map_err(|e| err(what, e))
}

/// One service date merged: its work batches (flags recomputed) and the rows to keep, in
/// output order.
pub struct Merged {
    /// All rows of the date (existing and new), flags recomputed.
    pub batches: Vec<RecordBatch>,
    /// Rows kept as (batch, row), sorted by vehicle, trip, act_time, lineage.
    pub kept: Vec<(u32, u32)>,
    /// Duplicate readings among the new rows, as rejects.
    pub dups: Vec<RejectRow>,
    /// New rows kept.
    pub new_rows: u64,
    /// New rows kept with `meters_backwards`.
    pub new_backwards: u64,
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

/// Merges every batch of one service date without concatenating them: rows already in the
/// lake (`is_new` = false) keep their place; a new row that repeats a reading (same vehicle,
/// trip, act_time and values) of an earlier row — existing first, then by topic, partition,
/// offset — becomes a `duplicate` reject; `meters_backwards` is recomputed along each trip.
pub fn merge(batches: Vec<RecordBatch>, date: NaiveDate) -> Result<Merged, StandardError> {
    for b in &batches {
        if b.schema() != work_schema() {
            return Err(err("merging batches", "a batch does not have the work schema"));
        }
    }
    // Topic order by name (dictionary keys differ from batch to batch).
    let mut names: Vec<String> = Vec::new();
    for b in &batches {
        let d = b.column(c::TOPIC).as_dictionary::<Int32Type>();
        names.extend(d.values().as_string::<i32>().iter().flatten().map(str::to_string));
    }
    names.sort();
    names.dedup();
    let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut keys: Vec<(i64, i64, i32, bool, u32, i32, i64, u32, u32)> = Vec::with_capacity(n);
    for (bi, b) in batches.iter().enumerate() {
        let (trip, veh, act) = (prim::<Int64Type>(b, c::TRIP), prim::<Int64Type>(b, c::VEHICLE), prim::<Int32Type>(b, c::ACT));
        let (part, off) = (prim::<Int32Type>(b, c::PARTITION), prim::<Int64Type>(b, c::OFFSET));
        let is_new = b.column(c::IS_NEW).as_boolean();
        let d = b.column(c::TOPIC).as_dictionary::<Int32Type>();
        let rank: Vec<u32> = d.values().as_string::<i32>().iter().map(|t| names.binary_search_by(|x| x.as_str().cmp(t.unwrap_or(""))).unwrap_or(0) as u32).collect();
        let tk = d.keys();
        for i in 0..b.num_rows() {
            keys.push((veh.value(i), trip.value(i), act.value(i), is_new.value(i), rank[tk.value(i) as usize], part.value(i), off.value(i), bi as u32, i as u32));
        }
    }
    keys.sort_unstable();

    let values: Vec<Values<'_>> = batches.iter().map(Values::of).collect();
    let mut kept: Vec<(u32, u32)> = Vec::with_capacity(n);
    let mut dups = Vec::new();
    let mut g = 0;
    while g < keys.len() {
        let mut e = g + 1;
        while e < keys.len() && (keys[e].0, keys[e].1, keys[e].2) == (keys[g].0, keys[g].1, keys[g].2) {
            e += 1;
        }
        let group_start = kept.len();
        for k in &keys[g..e] {
            let (bi, i) = (k.7 as usize, k.8 as usize);
            let first = if k.3 { kept[group_start..].iter().copied().find(|(bj, j)| values[*bj as usize].same(*j as usize, &values[bi], i)) } else { None };
            match first {
                None => kept.push((k.7, k.8)),
                Some((bj, j)) => dups.push(duplicate(&batches[bi], i, &batches[bj as usize], j as usize, date)),
            }
        }
        g = e;
    }
    drop(keys);
    drop(values);

    // meters_backwards along each trip, in time order.
    let mut bits: Vec<Vec<u8>> = batches.iter().map(|b| prim::<arrow::datatypes::UInt8Type>(b, c::FLAGS).values().to_vec()).collect();
    let mb = flag_bit(rules::METERS_BACKWARDS);
    let cols: Vec<_> = batches.iter().map(|b| (prim::<Int64Type>(b, c::VEHICLE), prim::<Int64Type>(b, c::TRIP), prim::<Int64Type>(b, c::METERS), b.column(c::IS_NEW).as_boolean())).collect();
    let mut prev: Option<(i64, i64, i64)> = None;
    let (mut new_rows, mut new_backwards) = (0u64, 0u64);
    for &(bi, i) in &kept {
        let (bi, i) = (bi as usize, i as usize);
        let (veh, trip, meters, is_new) = cols[bi];
        let bit = &mut bits[bi][i];
        *bit &= !mb;
        let (v, t) = (veh.value(i), trip.value(i));
        if meters.is_valid(i) {
            let m = meters.value(i);
            if let Some((pv, pt, pm)) = prev {
                if pv == v && pt == t && m < pm {
                    *bit |= mb;
                }
            }
            prev = Some((v, t, m));
        } else if prev.is_some_and(|(pv, pt, _)| pv != v || pt != t) {
            prev = None;
        }
        if is_new.value(i) {
            new_rows += 1;
            if *bit & mb != 0 {
                new_backwards += 1;
            }
        }
    }
    drop(cols);
    let batches = batches
        .into_iter()
        .zip(bits)
        .map(|(b, bits)| {
            let mut cols = b.columns().to_vec();
            cols[c::FLAGS] = Arc::new(UInt8Array::from(bits));
            RecordBatch::try_new(work_schema(), cols).map_err(|e| err("merging batches", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Merged { batches, kept, dups, new_rows, new_backwards })
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

/// Encodes the kept rows of a merged date as Parquet files of at most `file_rows` rows each,
/// converting `slice_rows` rows at a time (memory: the work batches plus one slice).
pub fn write_date(m: &Merged, file_rows: usize, slice_rows: usize, props: &parquet::file::properties::WriterProperties) -> Result<Vec<(Vec<u8>, u64)>, StandardError> {
    let mut files = Vec::new();
    for chunk in m.kept.chunks(file_rows.max(1)) {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, breadcrumbs_schema(), Some(props.clone())).map_err(|e| err("parquet writer", e))?;
        for slice in chunk.chunks(slice_rows.max(1)) {
            w.write(&from_work(&m.batches, slice)?).map_err(|e| err("parquet write", e))?;
        }
        w.close().map_err(|e| err("parquet close", e))?;
        files.push((buf, chunk.len() as u64));
    }
    Ok(files)
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
        let mut b = WorkBuilder::default();
        for (v, t, a, m, p, o) in rows {
            b.push(&bc(*v, *t, *a, *m), *p, *o, Some(1));
        }
        b.finish("t", raw_key).unwrap()
    }

    fn column_i64(b: &RecordBatch, name: &str) -> Vec<i64> {
        b.column_by_name(name).unwrap().as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn merge_dedups_sorts_and_flags_backwards_meters() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        // Already in the lake: vehicle 2 trip 10 at 100 s, from offset 0.
        let existing = to_work(&from_work(&[batch(&[(2, 10, 100, 50, 0, 0)], "raw/t/old")], &[(0, 0)]).unwrap(), false).unwrap();
        let new = batch(&[(2, 10, 105, 40, 0, 3), (1, 5, 100, 10, 0, 2), (2, 10, 100, 50, 1, 7), (2, 10, 100, 50, 0, 1), (2, 10, 100, 51, 0, 4)], "raw/t/new");
        let m = merge(vec![existing, new], d).unwrap();
        let out = from_work(&m.batches, &m.kept).unwrap();
        assert_eq!(column_i64(&out, "vehicle_id"), vec![1, 2, 2, 2]);
        assert_eq!(column_i64(&out, "meters"), vec![10, 50, 51, 40], "same time, other values: kept after the existing reading");
        assert_eq!(column_i64(&out, "kafka_offset"), vec![2, 0, 4, 3]);
        // The two repeats of the existing reading are rejects that name it.
        assert_eq!(m.dups.len(), 2);
        assert!(m.dups.iter().all(|r| r.rule == rules::DUPLICATE && r.service_date == Some(d) && r.message.contains("partition 0 offset 0")));
        assert_eq!(m.dups.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>(), vec![(0, 1), (1, 7)]);
        assert_eq!(m.new_rows, 3);
        // meters 51 → 40 goes backwards within the trip; hdop 9 is flagged on every row.
        let flags = out.column_by_name("quality_flags").unwrap().as_list::<i32>();
        let f = |i: usize| flags.value(i).as_string::<i32>().iter().flatten().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(f(3), vec![rules::HDOP_HIGH.to_string(), rules::METERS_BACKWARDS.to_string()]);
        assert_eq!(f(2), vec![rules::HDOP_HIGH.to_string()]);
        assert_eq!(m.new_backwards, 1);
        // Idempotent: merging the result again changes nothing and rejects nothing.
        let again = merge(vec![to_work(&out, false).unwrap()], d).unwrap();
        assert!(again.dups.is_empty());
        assert_eq!(from_work(&again.batches, &again.kept).unwrap(), out);
    }

    #[test]
    fn files_are_cut_by_rows_and_read_back_with_the_breadcrumbs_schema() {
        let d = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        let rows: Vec<_> = (0..10).map(|i| (7, 8, 100 + i, 10 * i as i64, 0, i as i64)).collect();
        let m = merge(vec![batch(&rows, "raw/t/k")], d).unwrap();
        let props = crate::standard::writer_props(3, 4, true);
        let files = write_date(&m, 4, 3, &props).unwrap();
        assert_eq!(files.iter().map(|f| f.1).collect::<Vec<_>>(), vec![4, 4, 2]);
        let back = crate::standard::read_parquet(bytes::Bytes::from(files[1].0.clone()), "t").unwrap();
        assert_eq!(back[0].schema(), breadcrumbs_schema());
        assert_eq!(column_i64(&back[0], "kafka_offset"), vec![4, 5, 6, 7]);
        assert_eq!(back[0].column_by_name("raw_key").unwrap().as_string::<i32>().value(0), "raw/t/k");
    }
}
