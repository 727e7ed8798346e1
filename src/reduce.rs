//! `etl reduce`: the standard layer → a cheap archival layer, with the trade-off measured.
//!
//! ```text
//!  standard/breadcrumbs/service_date=D  (live files from the standard manifest)
//!     │ 1. keep vehicles / trips (stable hash sampling with a seed, or explicit lists)
//!     │ 2. per trip, ordered by act_time: summary row; thinning (every N s | Douglas–Peucker)
//!     ▼
//!  archive/breadcrumbs/service_date=D/part-…parquet   (thinned rows, zstd 19)
//!  archive/trips/service_date=D/part-…parquet         (one row per trip)
//!  archive/_log/<version>.json                        (manifest, as in table.rs)
//! ```
//!
//! Deterministic: the same standard files and policy give the same archive. A date is
//! (re)built when its standard files or the policy changed since it was last archived.

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::lake::Lake;
use crate::standard::{read_parquet, rows_from_batch, rows_to_batch, write_parquet, writer_props, Row, StandardError};
use crate::table::{DataFile, Layer, Manifest, TableError};

/// Errors of a reduce run.
#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    /// Reading or writing Parquet.
    #[error(transparent)]
    Standard(#[from] StandardError),
    /// Commit protocol.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Lake I/O.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    /// Nothing to reduce from.
    #[error("the lake has no standard layer yet (run `etl standard` first)")]
    NoStandard,
}

/// How breadcrumbs within a trip are thinned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Thin {
    /// Keep every point.
    None,
    /// Keep the first point, then one at least every N seconds, and the last.
    EverySeconds(u32),
    /// Douglas–Peucker path simplification with this tolerance (metres); keeps first, last and turns.
    SimplifyMeters(f64),
}

/// A reduction policy. Every part is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Keep this fraction of vehicles (stable hash of vehicle id and seed).
    pub vehicle_fraction: Option<f64>,
    /// Keep this fraction of trips (stable hash of trip id and seed).
    pub trip_fraction: Option<f64>,
    /// Seed of the sampling hash.
    pub seed: u64,
    /// Keep only these vehicles.
    pub vehicles: Option<Vec<i64>>,
    /// Keep only these trips.
    pub trips: Option<Vec<i64>>,
    /// Thinning within a trip.
    pub thin: Thin,
    /// Write one summary row per trip.
    pub summaries: bool,
    /// Only service dates at least this many days before `as_of`.
    pub older_than_days: Option<u32>,
    /// Reference date for `older_than_days` (default: today, UTC).
    #[serde(skip)]
    pub as_of: Option<NaiveDate>,
    /// zstd level of the archive files.
    pub zstd_level: i32,
}

impl Default for Policy {
    /// What `etl demo` uses: summaries for every trip, one breadcrumb per 30 s per trip.
    fn default() -> Self {
        Self { vehicle_fraction: None, trip_fraction: None, seed: 0, vehicles: None, trips: None, thin: Thin::EverySeconds(30), summaries: true, older_than_days: None, as_of: None, zstd_level: 19 }
    }
}

/// SplitMix64: a stable 64-bit mix (the same on every machine and release, unlike std's hasher).
pub fn stable_hash(seed: u64, id: i64) -> u64 {
    let mut z = seed.wrapping_add(id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `id` falls in the kept `fraction` for `seed`.
pub fn sampled(seed: u64, id: i64, fraction: f64) -> bool {
    (stable_hash(seed, id) as f64) < fraction.clamp(0.0, 1.0) * (u64::MAX as f64)
}

impl Policy {
    fn keeps_vehicle(&self, v: i64) -> bool {
        self.vehicles.as_ref().is_none_or(|l| l.contains(&v)) && self.vehicle_fraction.is_none_or(|f| sampled(self.seed, v, f))
    }
    fn keeps_trip(&self, t: i64) -> bool {
        self.trips.as_ref().is_none_or(|l| l.contains(&t)) && self.trip_fraction.is_none_or(|f| sampled(self.seed ^ 0x7419, t, f))
    }
    fn fingerprint(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Equirectangular projection around `lat0`, in metres (fine at city scale).
fn project(lat: f64, lon: f64, lat0: f64) -> (f64, f64) {
    const R: f64 = 6_371_008.8;
    (lon.to_radians() * R * lat0.to_radians().cos(), lat.to_radians() * R)
}

/// Great-circle distance in metres.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().asin()
}

fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 { 0.0 } else { (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0) };
    let (x, y) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - x).powi(2) + (p.1 - y).powi(2)).sqrt()
}

/// Douglas–Peucker over projected points: indices kept (always first and last).
pub fn simplify(points: &[(f64, f64)], tolerance: f64) -> Vec<usize> {
    let n = points.len();
    if n <= 2 {
        return (0..n).collect();
    }
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[n - 1] = true;
    let mut stack = vec![(0usize, n - 1)];
    while let Some((a, b)) = stack.pop() {
        let (mut worst, mut at) = (0.0, 0);
        for i in a + 1..b {
            let d = seg_dist(points[i], points[a], points[b]);
            if d > worst {
                worst = d;
                at = i;
            }
        }
        if worst > tolerance {
            keep[at] = true;
            stack.push((a, at));
            stack.push((at, b));
        }
    }
    (0..n).filter(|i| keep[*i]).collect()
}

/// Indices kept by time thinning: first, then ≥ `secs` after the last kept, and the last.
pub fn thin_by_time(act_times: &[i32], secs: u32) -> Vec<usize> {
    let n = act_times.len();
    let mut out = Vec::new();
    let mut last: Option<i32> = None;
    for (i, t) in act_times.iter().enumerate() {
        if last.is_none_or(|l| (*t as i64 - l as i64) >= secs as i64) || i + 1 == n {
            out.push(i);
            last = Some(*t);
        }
    }
    out
}

/// Fidelity of a thinned trip against the full one.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Fidelity {
    /// Largest distance of a dropped point from the thinned path (m).
    pub max_deviation_m: f64,
    /// Path length of the full track (m).
    pub full_length_m: f64,
    /// Path length of the thinned track (m).
    pub thinned_length_m: f64,
}

/// One trip summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TripSummary {
    /// Vehicle.
    pub vehicle_id: i64,
    /// Trip.
    pub trip_id: i64,
    /// First reading (µs UTC).
    pub start_time_us: i64,
    /// Last reading (µs UTC).
    pub end_time_us: i64,
    /// Seconds from first to last reading.
    pub duration_s: i64,
    /// Distance from the odometer: max(METERS) − min(METERS) (m).
    pub distance_m: f64,
    /// Length of the GPS track (m).
    pub path_length_m: f64,
    /// Readings.
    pub points: i64,
    /// distance_m / duration_s.
    pub avg_speed_mps: Option<f64>,
    /// Highest speed between consecutive readings (ΔMETERS/Δt, Δt > 0), m/s.
    pub max_speed_mps: Option<f64>,
    /// Bounding box.
    pub min_lat: Option<f64>,
    /// Bounding box.
    pub max_lat: Option<f64>,
    /// Bounding box.
    pub min_lon: Option<f64>,
    /// Bounding box.
    pub max_lon: Option<f64>,
}

fn positions(rows: &[Row]) -> Vec<Option<(f64, f64)>> {
    rows.iter().map(|r| r.bc.latitude.zip(r.bc.longitude)).collect()
}

fn path_length(p: &[(f64, f64)]) -> f64 {
    p.windows(2).map(|w| haversine_m(w[0], w[1])).sum()
}

/// Summarises one trip (rows sorted by act_time).
pub fn summarize(trip: &[Row]) -> Option<TripSummary> {
    let first = trip.first()?;
    let last = trip.last()?;
    let meters: Vec<i64> = trip.iter().filter_map(|r| r.bc.meters).collect();
    let distance_m = match (meters.iter().min(), meters.iter().max()) {
        (Some(a), Some(b)) => (b - a) as f64,
        _ => 0.0,
    };
    let duration_s = ((last.bc.event_time_us - first.bc.event_time_us) / 1_000_000).max(0);
    let mut max_speed: Option<f64> = None;
    let mut prev: Option<(i32, i64)> = None;
    for r in trip {
        if let Some(m) = r.bc.meters {
            if let Some((t0, m0)) = prev {
                let dt = r.bc.act_time - t0;
                if dt > 0 && m >= m0 {
                    let v = (m - m0) as f64 / dt as f64;
                    max_speed = Some(max_speed.map_or(v, |x: f64| x.max(v)));
                }
            }
            prev = Some((r.bc.act_time, m));
        }
    }
    let pos: Vec<(f64, f64)> = positions(trip).into_iter().flatten().collect();
    let fold = |f: fn(f64, f64) -> f64, sel: fn(&(f64, f64)) -> f64| pos.iter().map(sel).reduce(f);
    Some(TripSummary {
        vehicle_id: first.bc.vehicle_id,
        trip_id: first.bc.trip_id,
        start_time_us: first.bc.event_time_us,
        end_time_us: last.bc.event_time_us,
        duration_s,
        distance_m,
        path_length_m: path_length(&pos),
        points: trip.len() as i64,
        avg_speed_mps: (duration_s > 0).then(|| distance_m / duration_s as f64),
        max_speed_mps: max_speed,
        min_lat: fold(f64::min, |p| p.0),
        max_lat: fold(f64::max, |p| p.0),
        min_lon: fold(f64::min, |p| p.1),
        max_lon: fold(f64::max, |p| p.1),
    })
}

/// Thins one trip (rows sorted by act_time); returns the kept rows and the fidelity.
pub fn thin_trip(trip: &[Row], thin: Thin) -> (Vec<Row>, Fidelity) {
    let idx: Vec<usize> = match thin {
        Thin::None => (0..trip.len()).collect(),
        Thin::EverySeconds(s) => thin_by_time(&trip.iter().map(|r| r.bc.act_time).collect::<Vec<_>>(), s),
        Thin::SimplifyMeters(tol) => {
            // Simplify the positioned points; rows without a position are dropped (first/last kept).
            let pos = positions(trip);
            let with: Vec<usize> = (0..trip.len()).filter(|i| pos[*i].is_some()).collect();
            let lat0 = with.first().and_then(|i| pos[*i]).map_or(45.5, |p| p.0);
            let proj: Vec<(f64, f64)> = with.iter().filter_map(|i| pos[*i].map(|p| project(p.0, p.1, lat0))).collect();
            let mut keep: Vec<usize> = simplify(&proj, tol).into_iter().map(|k| with[k]).collect();
            if !trip.is_empty() {
                keep.push(0);
                keep.push(trip.len() - 1);
            }
            keep.sort_unstable();
            keep.dedup();
            keep
        }
    };
    // Fidelity: each dropped positioned point against the kept path segment around it (by time).
    let pos = positions(trip);
    let kept_pos: Vec<usize> = idx.iter().copied().filter(|i| pos[*i].is_some()).collect();
    let lat0 = kept_pos.first().and_then(|i| pos[*i]).map_or(45.5, |p| p.0);
    let mut max_dev: f64 = 0.0;
    let mut k = 0;
    for (i, p) in pos.iter().enumerate() {
        let Some(p) = p else { continue };
        while k + 1 < kept_pos.len() && kept_pos[k + 1] < i {
            k += 1;
        }
        if kept_pos.binary_search(&i).is_ok() || kept_pos.is_empty() {
            continue;
        }
        let a = pos[kept_pos[k]].unwrap_or(*p);
        let b = kept_pos.get(k + 1).and_then(|j| pos[*j]).unwrap_or(a);
        let d = seg_dist(project(p.0, p.1, lat0), project(a.0, a.1, lat0), project(b.0, b.1, lat0));
        max_dev = max_dev.max(d);
    }
    let full: Vec<(f64, f64)> = pos.iter().flatten().copied().collect();
    let thinned: Vec<(f64, f64)> = kept_pos.iter().filter_map(|i| pos[*i]).collect();
    let fid = Fidelity { max_deviation_m: max_dev, full_length_m: path_length(&full), thinned_length_m: path_length(&thinned) };
    (idx.into_iter().map(|i| trip[i].clone()).collect(), fid)
}

/// Schema of `trips` files (`service_date` lives in the hive path).
pub fn trips_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")));
    Arc::new(Schema::new(vec![
        Field::new("vehicle_id", DataType::Int64, false),
        Field::new("trip_id", DataType::Int64, false),
        Field::new("start_time", ts(), false),
        Field::new("end_time", ts(), false),
        Field::new("duration_s", DataType::Int64, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("path_length_m", DataType::Float64, false),
        Field::new("points", DataType::Int64, false),
        Field::new("avg_speed_mps", DataType::Float64, true),
        Field::new("max_speed_mps", DataType::Float64, true),
        Field::new("min_lat", DataType::Float64, true),
        Field::new("max_lat", DataType::Float64, true),
        Field::new("min_lon", DataType::Float64, true),
        Field::new("max_lon", DataType::Float64, true),
    ]))
}

fn trips_batch(t: &[TripSummary]) -> Result<RecordBatch, StandardError> {
    let i = |f: fn(&TripSummary) -> i64| Arc::new(t.iter().map(f).collect::<Int64Array>()) as ArrayRef;
    let f = |f: fn(&TripSummary) -> Option<f64>| Arc::new(t.iter().map(f).collect::<Float64Array>()) as ArrayRef;
    let ts = |f: fn(&TripSummary) -> i64| Arc::new(TimestampMicrosecondArray::from(t.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC")) as ArrayRef;
    RecordBatch::try_new(
        trips_schema(),
        vec![
            i(|s| s.vehicle_id),
            i(|s| s.trip_id),
            ts(|s| s.start_time_us),
            ts(|s| s.end_time_us),
            i(|s| s.duration_s),
            f(|s| Some(s.distance_m)),
            f(|s| Some(s.path_length_m)),
            i(|s| s.points),
            f(|s| s.avg_speed_mps),
            f(|s| s.max_speed_mps),
            f(|s| s.min_lat),
            f(|s| s.max_lat),
            f(|s| s.min_lon),
            f(|s| s.max_lon),
        ],
    )
    .map_err(|e| StandardError::Parquet { what: "trips batch".into(), reason: e.to_string() })
}

/// What a reduce run did and what it cost in fidelity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReduceReport {
    /// Run id.
    pub run_id: String,
    /// Version committed (none for dry runs or nothing to do).
    pub version: Option<u64>,
    /// Dry run: nothing written.
    pub dry_run: bool,
    /// Policy applied.
    pub policy: serde_json::Value,
    /// Service dates (re)built.
    pub service_dates: Vec<String>,
    /// Service dates left in standard only (too recent).
    pub dates_too_recent: Vec<String>,
    /// Standard rows read.
    pub rows_before: u64,
    /// Archive breadcrumb rows written.
    pub rows_after: u64,
    /// Standard bytes of those dates.
    pub bytes_before: u64,
    /// Archive bytes (breadcrumbs + trips).
    pub bytes_after: u64,
    /// bytes_before / bytes_after.
    pub byte_ratio: f64,
    /// rows_before / rows_after.
    pub row_ratio: f64,
    /// Vehicles seen / kept.
    pub vehicles: (u64, u64),
    /// Trips seen / kept.
    pub trips: (u64, u64),
    /// Trip summaries written.
    pub trip_summaries: u64,
    /// Largest distance of a dropped point from its thinned track (m).
    pub max_deviation_m: f64,
    /// Mean over kept trips of (full − thinned GPS path length) / full, in percent.
    pub mean_path_length_error_pct: f64,
    /// Largest such error over kept trips, in percent.
    pub max_path_length_error_pct: f64,
    /// Wall time.
    pub duration_s: f64,
}

impl ReduceReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        format!(
            "reduce run {}{}: {} service dates, rows {} → {} ({:.1}x), bytes {:.2} MB → {:.2} MB ({:.1}x); vehicles kept {}/{}, trips kept {}/{}, {} trip summaries\n  fidelity: max deviation {:.1} m, GPS path length error mean {:.2}% max {:.2}%{}\n",
            self.run_id,
            if self.dry_run { " (dry run, nothing written)" } else { "" },
            self.service_dates.len(),
            self.rows_before,
            self.rows_after,
            self.row_ratio,
            self.bytes_before as f64 / 1e6,
            self.bytes_after as f64 / 1e6,
            self.byte_ratio,
            self.vehicles.1,
            self.vehicles.0,
            self.trips.1,
            self.trips.0,
            self.trip_summaries,
            self.max_deviation_m,
            self.mean_path_length_error_pct,
            self.max_path_length_error_pct,
            if self.dates_too_recent.is_empty() { String::new() } else { format!("\n  left in standard (too recent): {}", self.dates_too_recent.join(", ")) }
        )
    }
}

/// Reduces one service date's rows (sorted by vehicle, trip, act_time).
pub fn reduce_rows(rows: &[Row], policy: &Policy, report: &mut ReduceReport, errs: &mut Vec<f64>) -> (Vec<Row>, Vec<TripSummary>) {
    let mut out = Vec::new();
    let mut trips = Vec::new();
    let mut vehicles_seen = std::collections::BTreeSet::new();
    let mut vehicles_kept = std::collections::BTreeSet::new();
    let mut start = 0;
    while start < rows.len() {
        let (v, t) = (rows[start].bc.vehicle_id, rows[start].bc.trip_id);
        let mut end = start;
        while end < rows.len() && rows[end].bc.vehicle_id == v && rows[end].bc.trip_id == t {
            end += 1;
        }
        let trip = &rows[start..end];
        start = end;
        vehicles_seen.insert(v);
        report.trips.0 += 1;
        if !policy.keeps_vehicle(v) || !policy.keeps_trip(t) {
            continue;
        }
        vehicles_kept.insert(v);
        report.trips.1 += 1;
        if policy.summaries {
            trips.extend(summarize(trip));
        }
        let (kept, fid) = thin_trip(trip, policy.thin);
        report.max_deviation_m = report.max_deviation_m.max(fid.max_deviation_m);
        if fid.full_length_m > 0.0 {
            errs.push(100.0 * (fid.full_length_m - fid.thinned_length_m) / fid.full_length_m);
        }
        out.extend(kept);
    }
    report.vehicles.0 += vehicles_seen.len() as u64;
    report.vehicles.1 += vehicles_kept.len() as u64;
    (out, trips)
}

/// Runs `etl reduce` (or a dry run).
pub async fn run(lake: &Lake, policy: &Policy, dry_run: bool) -> Result<ReduceReport, ReduceError> {
    let started = Instant::now();
    let run_id = crate::table::new_run_id();
    let standard = Layer::new(lake.clone(), "standard").latest().await?.ok_or(ReduceError::NoStandard)?;
    let layer = Layer::new(lake.clone(), "archive");
    let parent = if dry_run { layer.latest().await? } else { layer.recover(&["breadcrumbs", "trips"]).await? };
    let version = parent.as_ref().map_or(1, |m| m.version + 1);
    let fingerprint = policy.fingerprint();
    let mut report = ReduceReport { run_id: run_id.clone(), dry_run, policy: serde_json::to_value(policy).unwrap_or_default(), ..Default::default() };

    // Which dates need (re)building.
    let mut by_date: BTreeMap<String, Vec<DataFile>> = BTreeMap::new();
    for f in standard.tables.get("breadcrumbs").into_iter().flatten() {
        by_date.entry(f.partition.clone()).or_default().push(f.clone());
    }
    let as_of = policy.as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut todo = Vec::new();
    for (part, files) in &by_date {
        let Some(date) = part.strip_prefix("service_date=").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else { continue };
        if let Some(n) = policy.older_than_days {
            if (as_of - date).num_days() < n as i64 {
                report.dates_too_recent.push(date.to_string());
                continue;
            }
        }
        let inputs = serde_json::json!({"standard_files": files.iter().map(|f| &f.path).collect::<Vec<_>>(), "policy": fingerprint});
        if parent.as_ref().and_then(|m| m.consumed.get(part)) == Some(&inputs) {
            continue;
        }
        todo.push((part.clone(), date, files.clone(), inputs));
    }
    if todo.is_empty() {
        report.duration_s = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let mut tables: BTreeMap<String, Vec<DataFile>> = parent.as_ref().map(|m| m.tables.clone()).unwrap_or_default();
    let mut consumed = parent.as_ref().map(|m| m.consumed.clone()).unwrap_or_default();
    let mut staged = BTreeMap::new();
    let mut errs = Vec::new();
    let staging = layer.staging(&run_id);
    for (part, date, files, inputs) in todo {
        let mut rows = Vec::new();
        for f in &files {
            report.bytes_before += f.bytes;
            for b in read_parquet(lake.get(&f.path).await?, &f.path)? {
                rows.extend(rows_from_batch(&b, date)?);
            }
        }
        rows.sort_by(|a, b| (a.bc.vehicle_id, a.bc.trip_id, a.bc.act_time, a.partition, a.offset).cmp(&(b.bc.vehicle_id, b.bc.trip_id, b.bc.act_time, b.partition, b.offset)));
        report.rows_before += rows.len() as u64;
        let (kept, trips) = reduce_rows(&rows, policy, &mut report, &mut errs);
        report.rows_after += kept.len() as u64;
        report.trip_summaries += trips.len() as u64;
        report.service_dates.push(date.to_string());
        for t in ["breadcrumbs", "trips"] {
            tables.entry(t.to_string()).or_default().retain(|f| f.partition != part);
        }
        let outputs = [
            ("breadcrumbs", if kept.is_empty() { None } else { Some(rows_to_batch(&kept)?) }),
            ("trips", if trips.is_empty() { None } else { Some(trips_batch(&trips)?) }),
        ];
        for (table, batch) in outputs {
            let Some(batch) = batch else { continue };
            let bytes = write_parquet(&batch, writer_props(policy.zstd_level, 128 * 1024, table == "breadcrumbs"))?;
            report.bytes_after += bytes.len() as u64;
            let name = format!("part-{version:06}-{run_id}.parquet");
            let final_key = format!("archive/{table}/{part}/{name}");
            if !dry_run {
                let staged_key = format!("{staging}/{table}/{part}/{name}");
                let size = bytes.len() as u64;
                lake.put_create(&staged_key, Bytes::from(bytes)).await?;
                staged.insert(staged_key, final_key.clone());
                tables.entry(table.to_string()).or_default().push(DataFile { path: final_key, partition: part.clone(), rows: batch.num_rows() as u64, bytes: size });
            }
        }
        consumed.insert(part, inputs);
    }
    report.byte_ratio = if report.bytes_after > 0 { report.bytes_before as f64 / report.bytes_after as f64 } else { 0.0 };
    report.row_ratio = if report.rows_after > 0 { report.rows_before as f64 / report.rows_after as f64 } else { 0.0 };
    if !errs.is_empty() {
        report.mean_path_length_error_pct = errs.iter().sum::<f64>() / errs.len() as f64;
        report.max_path_length_error_pct = errs.iter().cloned().fold(0.0, f64::max);
    }
    report.duration_s = started.elapsed().as_secs_f64();
    if dry_run {
        return Ok(report);
    }
    report.version = Some(version);
    let manifest = Manifest {
        version,
        run_id: run_id.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        consumed,
        tables,
        staged,
        report: serde_json::to_value(&report).unwrap_or_default(),
    };
    if let Err(e) = layer.commit(parent.as_ref(), &manifest).await {
        let _ = layer.discard_staging(&run_id).await;
        return Err(e.into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_stable_and_close_to_the_fraction() {
        let kept: Vec<i64> = (0..10_000).filter(|v| sampled(42, *v, 0.3)).collect();
        assert!((2700..3300).contains(&kept.len()), "{}", kept.len());
        assert_eq!(kept, (0..10_000).filter(|v| sampled(42, *v, 0.3)).collect::<Vec<_>>());
        assert_ne!(kept, (0..10_000).filter(|v| sampled(43, *v, 0.3)).collect::<Vec<_>>());
        assert_eq!(stable_hash(0, 1), 0x910a_2dec_8902_5cc1, "the hash must never change between releases");
    }

    #[test]
    fn time_thinning_keeps_first_and_last() {
        assert_eq!(thin_by_time(&[0, 5, 10, 30, 35, 61, 62], 30), vec![0, 3, 5, 6]);
        assert_eq!(thin_by_time(&[7], 30), vec![0]);
        assert!(thin_by_time(&[], 30).is_empty());
    }

    #[test]
    fn douglas_peucker_keeps_turns_within_tolerance() {
        // An L: straight east 1 km, then north 1 km, with points every 100 m and a 3 m wiggle.
        let mut p: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64 * 100.0, if i % 2 == 0 { 0.0 } else { 3.0 })).collect();
        p.extend((1..=10).map(|i| (1000.0, i as f64 * 100.0)));
        let k = simplify(&p, 5.0);
        assert_eq!(k, vec![0, 10, 20]);
        let k = simplify(&p, 1.0);
        assert!(k.len() > 3 && k.contains(&10));
    }

    #[test]
    fn haversine_is_right_at_city_scale() {
        // 0.01° of latitude ≈ 1111.95 m.
        let d = haversine_m((45.5, -122.6), (45.51, -122.6));
        assert!((d - 1111.95).abs() < 0.5, "{d}");
    }
}
