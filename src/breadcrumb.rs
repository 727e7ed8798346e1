//! Breadcrumb parsing and validation: one raw Kafka payload → a typed row or a named reject.
//! Pure functions only; every rule and threshold lives in [`rules`].
//!
//! Accepted encodings (each noted in the row's `encoding` column):
//! - numbers as JSON numbers or as strings (`"1776"`, `"0.7"`); `""` and `null` mean missing;
//! - a record that is itself a JSON string containing the object (`double_encoded`);
//! - the 10-field record and the older 14-field one (VELOCITY, DIRECTION, RADIO_QUALITY,
//!   SCHEDULE_DEVIATION); field names case-insensitive; unknown fields kept in `extra` (JSON);
//! - a message that is one headerless CSV line of TriMet's export, 10 or 14 fields in its column
//!   order (`csv`);
//! - OPD_DATE as `12DEC2022:00:00:00`, `14-SEP-20`, `14-SEP-2020`, `2022-12-12` (+ time);
//! - ACT_TIME in seconds after midnight of the service day, possibly ≥ 86400 after midnight;
//! - a message that holds several records (producers that batch readings, possibly
//!   compressed): a JSON array, NDJSON, or several CSV lines; each is a record of its own
//!   ([`parse_records`] → [`Message::Batch`]).
//!
//! Three readers, tried in order, all giving the same row for what they accept (tested against
//! each other on every shape): `flat::plain` (a flat object of known fields only, each value
//! read straight into its number: what feeds send), `flat::fields` (any flat object without
//! escapes), then serde_json for everything else (escapes, nesting, double encoding, errors).

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::America::Los_Angeles;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Validation rules and thresholds, in one place.
pub mod rules {
    /// Hard rule: the message is empty.
    pub const EMPTY: &str = "empty_message";
    /// Hard rule: not JSON (or not UTF-8).
    pub const INVALID_JSON: &str = "invalid_json";
    /// Hard rule: JSON, but not a breadcrumb object (a scalar, an array inside an array, another schema).
    pub const NOT_A_BREADCRUMB: &str = "not_a_breadcrumb";
    /// Hard rule: no EVENT_NO_TRIP.
    pub const MISSING_TRIP: &str = "missing_trip_id";
    /// Hard rule: no VEHICLE_ID.
    pub const MISSING_VEHICLE: &str = "missing_vehicle_id";
    /// Hard rule: no OPD_DATE, or one in no known format.
    pub const BAD_DATE: &str = "bad_service_date";
    /// Hard rule: no ACT_TIME, or outside 0..=[`MAX_ACT_TIME`].
    pub const BAD_TIME: &str = "bad_act_time";
    /// Hard rule: a key field (trip, vehicle) is not an integer.
    pub const BAD_KEY: &str = "bad_key_value";
    /// Hard rule: same vehicle, service date, act_time and values as a row already kept.
    pub const DUPLICATE: &str = "duplicate";

    /// Soft flag: coordinates outside [`LAT_RANGE`] × [`LON_RANGE`] (TriMet's service area, generous).
    pub const OUTSIDE_AREA: &str = "outside_service_area";
    /// Soft flag: latitude or longitude missing.
    pub const NO_POSITION: &str = "missing_position";
    /// Soft flag: GPS_HDOP above [`MAX_HDOP`].
    pub const HDOP_HIGH: &str = "hdop_high";
    /// Soft flag: GPS_SATELLITES outside [`SATELLITES_RANGE`].
    pub const SATELLITES: &str = "satellites_out_of_range";
    /// Soft flag: METERS lower than the previous reading of the same trip (ordered by act_time).
    pub const METERS_BACKWARDS: &str = "meters_backwards";
    /// Soft flag: an optional field held a value that is not a number; stored as null.
    pub const BAD_OPTIONAL: &str = "unparseable_optional_value";

    /// Latitude range of the service area (degrees).
    pub const LAT_RANGE: (f64, f64) = (44.9, 46.0);
    /// Longitude range of the service area (degrees).
    pub const LON_RANGE: (f64, f64) = (-123.5, -121.9);
    /// Highest acceptable horizontal dilution of precision.
    pub const MAX_HDOP: f64 = 5.0;
    /// Plausible satellite counts.
    pub const SATELLITES_RANGE: (i32, i32) = (3, 32);
    /// ACT_TIME beyond this (two days) is not a service-day time.
    pub const MAX_ACT_TIME: i64 = 2 * 86_400;

    /// Every hard rule, for documentation and reports.
    pub const HARD: [&str; 9] = [EMPTY, INVALID_JSON, NOT_A_BREADCRUMB, MISSING_TRIP, MISSING_VEHICLE, BAD_DATE, BAD_TIME, BAD_KEY, DUPLICATE];
    /// Every soft flag.
    pub const SOFT: [&str; 6] = [OUTSIDE_AREA, NO_POSITION, HDOP_HIGH, SATELLITES, METERS_BACKWARDS, BAD_OPTIONAL];
}

/// A typed breadcrumb (lineage is added by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Breadcrumb {
    /// EVENT_NO_TRIP.
    pub trip_id: i64,
    /// EVENT_NO_STOP.
    pub stop_event_id: Option<i64>,
    /// VEHICLE_ID.
    pub vehicle_id: i64,
    /// OPD_DATE (service day).
    pub service_date: NaiveDate,
    /// ACT_TIME, seconds after midnight of the service day.
    pub act_time: i32,
    /// Instant of the reading, µs since the epoch (UTC).
    pub event_time_us: i64,
    /// METERS (odometer of the vehicle, metres).
    pub meters: Option<i64>,
    /// GPS_LATITUDE.
    pub latitude: Option<f64>,
    /// GPS_LONGITUDE.
    pub longitude: Option<f64>,
    /// GPS_SATELLITES.
    pub satellites: Option<i32>,
    /// GPS_HDOP.
    pub hdop: Option<f64>,
    /// VELOCITY (older feeds).
    pub velocity: Option<f64>,
    /// DIRECTION (older feeds).
    pub direction: Option<f64>,
    /// RADIO_QUALITY (older feeds).
    pub radio_quality: Option<f64>,
    /// SCHEDULE_DEVIATION (older feeds).
    pub schedule_deviation: Option<i64>,
    /// Soft-rule flags.
    pub flags: Vec<&'static str>,
    /// Unknown fields, as a JSON object.
    pub extra: Option<String>,
    /// How the record was encoded (`json`, `json+string_numbers`, `json+double_encoded`, ...).
    pub encoding: &'static str,
}

/// Every value of the `encoding` column: "json" or "csv" plus the notes that apply, in this order.
/// Index bits: 1 = 14_field, 2 = double_encoded, 4 = string_numbers, 8 = extra_fields, 16 = csv
/// (a CSV line: every value is text, so `string_numbers` is not noted), 32 = compressed (the
/// payload was gzip or zlib data holding the record).
pub const ENCODINGS: [&str; 64] = [
    "json",
    "json+14_field",
    "json+double_encoded",
    "json+14_field+double_encoded",
    "json+string_numbers",
    "json+14_field+string_numbers",
    "json+double_encoded+string_numbers",
    "json+14_field+double_encoded+string_numbers",
    "json+extra_fields",
    "json+14_field+extra_fields",
    "json+double_encoded+extra_fields",
    "json+14_field+double_encoded+extra_fields",
    "json+string_numbers+extra_fields",
    "json+14_field+string_numbers+extra_fields",
    "json+double_encoded+string_numbers+extra_fields",
    "json+14_field+double_encoded+string_numbers+extra_fields",
    "csv",
    "csv+14_field",
    "csv+double_encoded",
    "csv+14_field+double_encoded",
    "csv+string_numbers",
    "csv+14_field+string_numbers",
    "csv+double_encoded+string_numbers",
    "csv+14_field+double_encoded+string_numbers",
    "csv+extra_fields",
    "csv+14_field+extra_fields",
    "csv+double_encoded+extra_fields",
    "csv+14_field+double_encoded+extra_fields",
    "csv+string_numbers+extra_fields",
    "csv+14_field+string_numbers+extra_fields",
    "csv+double_encoded+string_numbers+extra_fields",
    "csv+14_field+double_encoded+string_numbers+extra_fields",
    "json+compressed",
    "json+14_field+compressed",
    "json+double_encoded+compressed",
    "json+14_field+double_encoded+compressed",
    "json+string_numbers+compressed",
    "json+14_field+string_numbers+compressed",
    "json+double_encoded+string_numbers+compressed",
    "json+14_field+double_encoded+string_numbers+compressed",
    "json+extra_fields+compressed",
    "json+14_field+extra_fields+compressed",
    "json+double_encoded+extra_fields+compressed",
    "json+14_field+double_encoded+extra_fields+compressed",
    "json+string_numbers+extra_fields+compressed",
    "json+14_field+string_numbers+extra_fields+compressed",
    "json+double_encoded+string_numbers+extra_fields+compressed",
    "json+14_field+double_encoded+string_numbers+extra_fields+compressed",
    "csv+compressed",
    "csv+14_field+compressed",
    "csv+double_encoded+compressed",
    "csv+14_field+double_encoded+compressed",
    "csv+string_numbers+compressed",
    "csv+14_field+string_numbers+compressed",
    "csv+double_encoded+string_numbers+compressed",
    "csv+14_field+double_encoded+string_numbers+compressed",
    "csv+extra_fields+compressed",
    "csv+14_field+extra_fields+compressed",
    "csv+double_encoded+extra_fields+compressed",
    "csv+14_field+double_encoded+extra_fields+compressed",
    "csv+string_numbers+extra_fields+compressed",
    "csv+14_field+string_numbers+extra_fields+compressed",
    "csv+double_encoded+string_numbers+extra_fields+compressed",
    "csv+14_field+double_encoded+string_numbers+extra_fields+compressed",
];

/// Bit of [`ENCODINGS`] noting a compressed payload.
const COMPRESSED: usize = 32;
/// Bit of [`ENCODINGS`] noting a record inside a JSON string.
const DOUBLE_ENCODED: usize = 2;

/// The static `encoding` value equal to `s` (for rows read back from Parquet).
pub fn encoding_of(s: &str) -> &'static str {
    ENCODINGS.iter().find(|e| **e == s).copied().unwrap_or(ENCODINGS[0])
}

/// A hard-rule failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Rule name (see [`rules`]).
    pub rule: &'static str,
    /// Human explanation.
    pub message: String,
}

fn reject(rule: &'static str, message: impl Into<String>) -> Reject {
    Reject { rule, message: message.into() }
}

const KNOWN: [&str; 14] = [
    "EVENT_NO_TRIP", "EVENT_NO_STOP", "OPD_DATE", "VEHICLE_ID", "METERS", "ACT_TIME", "GPS_LONGITUDE", "GPS_LATITUDE",
    "GPS_SATELLITES", "GPS_HDOP", "VELOCITY", "DIRECTION", "RADIO_QUALITY", "SCHEDULE_DEVIATION",
];

/// `[-]digits[.digits]` with at most 15 digits, read exactly as `str::parse` reads it (the
/// digits and the power of ten are both exact in f64, so one division rounds correctly) but
/// several times faster; `None` for any other form.
fn decimal(s: &str) -> Option<f64> {
    decimal_at(s.as_bytes(), 0).and_then(|(v, end)| (end == s.len()).then_some(v))
}

/// [`decimal`] of the longest `[-]digits[.digits]` at `b[start..]`, and where it ends (the
/// fast path reads a string number this way, straight from the payload up to its quote).
#[inline]
fn decimal_at(b: &[u8], start: usize) -> Option<(f64, usize)> {
    let neg = b.get(start) == Some(&b'-');
    let mut i = start + usize::from(neg);
    let mut mantissa = 0u64;
    let int_digits = take_digits(b, &mut i, &mut mantissa);
    let mut scale = 0usize;
    if b.get(i) == Some(&b'.') {
        i += 1;
        scale = take_digits(b, &mut i, &mut mantissa);
        if scale == 0 {
            return None;
        }
    }
    // (Past 15 digits the mantissa may have wrapped; it is not used then.)
    if int_digits == 0 || int_digits + scale > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[scale];
    Some((if neg { -v } else { v }, i))
}

/// Reads the ASCII digits at `b[*i..]` into `mantissa` (times ten plus each digit, wrapping past
/// 19 digits: callers bound the count before using it), moves `*i` past them, and returns how
/// many there were. Shared by [`decimal`] and the fast path's numbers.
#[inline]
fn take_digits(b: &[u8], i: &mut usize, mantissa: &mut u64) -> usize {
    let start = *i;
    while let Some(c @ b'0'..=b'9') = b.get(*i) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        *i += 1;
    }
    *i - start
}

/// Powers of ten exact in f64, for [`decimal`] and the fast path's numbers.
const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// Whether a string in a numeric field means "no value": empty, `null` or `NaN` in any case,
/// spaces around allowed.
fn missing_text(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t.eq_ignore_ascii_case("null") || t.eq_ignore_ascii_case("nan")
}

/// A numeric field's value after normalisation.
enum Num {
    Missing,
    Value(f64, bool),
    Bad(String),
}

/// One JSON value of a record field, borrowed from the payload where possible.
enum Scalar<'a> {
    Null,
    Num(f64, serde_json::Number),
    Str(Cow<'a, str>),
    /// (Boxed: rare, and a `Value` would make every field of every record larger.)
    Other(Box<Value>),
}

impl Scalar<'_> {
    fn num(&self) -> Num {
        match self {
            Scalar::Null => Num::Missing,
            Scalar::Num(f, _) => Num::Value(*f, false),
            Scalar::Str(s) => {
                // Most string numbers are bare decimals, read at once (`decimal` takes no
                // spaces, so a string it reads is its own trimmed form).
                if let Some(f) = decimal(s) {
                    return Num::Value(f, true);
                }
                let t = s.trim();
                if missing_text(t) {
                    Num::Missing
                } else {
                    // (`decimal` already declined the untrimmed string; it reads what
                    // `str::parse` reads, so only the trimmed form's parse is left to try.)
                    match t.parse::<f64>() {
                        Ok(f) if f.is_finite() => Num::Value(f, true),
                        _ => Num::Bad(s.to_string()),
                    }
                }
            }
            Scalar::Other(v) => Num::Bad(v.to_string()),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Num(_, n) => Value::Number(n.clone()),
            Scalar::Str(s) => Value::String(s.to_string()),
            Scalar::Other(v) => (**v).clone(),
        }
    }
}

/// Deserializes a `Scalar`, borrowing strings without escapes.
struct ScalarSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other(Box::new(Value::Bool(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64, v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64, v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(match serde_json::Number::from_f64(v) {
            Some(n) => Scalar::Num(v, n),
            None => Scalar::Other(Box::new(Value::Null)),
        })
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(|v| Scalar::Other(Box::new(v)))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|v| Scalar::Other(Box::new(v)))
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A whole payload: a record object, a (possibly double-encoded) string, or something else.
enum Top<'a> {
    Record(Box<Fields<'a>>),
    Str(Cow<'a, str>),
    Array,
    Other(&'static str),
}

/// The 14 known fields plus whatever else the record carried.
struct Fields<'a> {
    known: [Option<Scalar<'a>>; 14],
    extra: Vec<(Cow<'a, str>, Scalar<'a>)>,
}

fn known_index(k: &str) -> Option<usize> {
    // (A match on constant strings: the compiler compares lengths, then words, no memcmp call.)
    let exact = match k {
        "EVENT_NO_TRIP" => Some(0),
        "EVENT_NO_STOP" => Some(1),
        "OPD_DATE" => Some(2),
        "VEHICLE_ID" => Some(3),
        "METERS" => Some(4),
        "ACT_TIME" => Some(5),
        "GPS_LONGITUDE" => Some(6),
        "GPS_LATITUDE" => Some(7),
        "GPS_SATELLITES" => Some(8),
        "GPS_HDOP" => Some(9),
        "VELOCITY" => Some(10),
        "DIRECTION" => Some(11),
        "RADIO_QUALITY" => Some(12),
        "SCHEDULE_DEVIATION" => Some(13),
        _ => None,
    };
    debug_assert!(exact.is_none_or(|i| KNOWN[i] == k));
    exact.or_else(|| {

        // Other vintages: lower case, stray spaces, a byte-order mark on the first CSV column.
        let k = k.trim_start_matches('\u{feff}').trim();
        KNOWN.iter().position(|n| n.eq_ignore_ascii_case(k))
    })
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut f = Fields { known: Default::default(), extra: Vec::new() };
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v = map.next_value_seed(ScalarSeed)?;
                    match known_index(&k) {
                        Some(i) if f.known[i].is_none() => f.known[i] = Some(v),
                        _ => f.extra.push((k, v)),
                    }
                }
                Ok(Top::Record(Box::new(f)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Top::Array)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Top::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Top::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Top::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Top::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Top::Other("boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Top::Other("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Top::Other("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Top::Other("number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses OPD_DATE in the formats seen in the wild.
pub fn parse_service_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let date_part = t.split([':', ' ', 'T']).next().unwrap_or(t);
    // Fast path for the common `12DEC2022` form.
    let b = date_part.as_bytes();
    if b.len() == 9 && b[..2].iter().all(u8::is_ascii_digit) && b[5..].iter().all(u8::is_ascii_digit) {
        let day = (b[0] - b'0') as u32 * 10 + (b[1] - b'0') as u32;
        let year = date_part[5..].parse::<i32>().ok()?;
        const MONTHS: [&[u8; 3]; 12] = [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"];
        let m = [b[2].to_ascii_uppercase(), b[3].to_ascii_uppercase(), b[4].to_ascii_uppercase()];
        if let Some(i) = MONTHS.iter().position(|x| **x == m) {
            return NaiveDate::from_ymd_opt(year, i as u32 + 1, day);
        }
    }
    for fmt in ["%d%b%Y", "%d-%b-%y", "%d-%b-%Y", "%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y%m%d", "%d%b%y"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, fmt) {
            return Some(d);
        }
    }
    None
}

/// [`parse_service_date`] with the last string and its answer kept per thread: a feed's
/// records carry the same OPD_DATE for a whole service day.
pub fn service_date_cached(s: &str) -> Option<NaiveDate> {
    thread_local! {
        static LAST: std::cell::RefCell<(String, Option<NaiveDate>)> = const { std::cell::RefCell::new((String::new(), None)) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != s {
            last.1 = parse_service_date(s);
            last.0.clear();
            last.0.push_str(s);
        }
        last.1
    })
}

/// The UTC instant (µs) of `act_time` seconds after midnight of `service_date`, read as a
/// wall-clock time in America/Los_Angeles. Beyond 86400 it rolls into the next day(s). A time
/// that does not exist (spring-forward gap) uses the offset before the change; an ambiguous one
/// (fall-back) takes the first occurrence (PDT).
pub fn event_time_us(service_date: NaiveDate, act_time: i64) -> Option<i64> {
    // Los Angeles changes its offset only on whole local hours, so every second of a local hour
    // has the offset of the hour's first second (the gap and the repeated hour included, by the
    // rules below). Readings come in time order: the offset of the last hour asked for is kept
    // per thread, and the time-zone search runs once an hour of readings, not once a reading.
    thread_local! {
        static LAST_HOUR: std::cell::Cell<Option<(NaiveDate, i64, i64)>> = const { std::cell::Cell::new(None) };
    }
    if service_date.year() < 1970 {
        // (Before 1970 the zone's history has offsets that are not whole hours.)
        return event_time_us_uncached(service_date, act_time);
    }
    let (hour, into) = (act_time.div_euclid(3600), act_time.rem_euclid(3600));
    if let Some((d, h, start_us)) = LAST_HOUR.get() {
        if d == service_date && h == hour {
            return Some(start_us + into * 1_000_000);
        }
    }
    let start_us = event_time_us_uncached(service_date, hour * 3600)?;
    LAST_HOUR.set(Some((service_date, hour, start_us)));
    Some(start_us + into * 1_000_000)
}

/// [`event_time_us`] without the per-hour cache (the definition the cache must agree with).
fn event_time_us_uncached(service_date: NaiveDate, act_time: i64) -> Option<i64> {
    let midnight = service_date.and_hms_opt(0, 0, 0)?;
    let local: NaiveDateTime = midnight.checked_add_signed(chrono::Duration::seconds(act_time))?;
    let dt = match Los_Angeles.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(a, _) => a,
        chrono::LocalResult::None => {
            // In the gap: interpret with the pre-change offset (an hour earlier, then forward).
            let before = local.checked_sub_signed(chrono::Duration::hours(1))?;
            let t = Los_Angeles.from_local_datetime(&before).earliest()?;
            t.checked_add_signed(chrono::Duration::hours(1))?
        }
    };
    Some(dt.timestamp_micros())
}

/// What one Kafka message holds.
// `One` is the common case and the large one: boxing it would allocate once per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// One record: a breadcrumb, or why not.
    One(Result<Breadcrumb, Reject>),
    /// Several records (producers that batch readings: a JSON array, NDJSON, CSV lines), each
    /// on its own, in order.
    Batch(Vec<Element>),
}

/// One element of a [`Message::Batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The breadcrumb, or why not; a reject's message names the element (`element 3 of 120: …`).
    pub result: Result<Breadcrumb, Reject>,
    /// The element's text as sent, for a reject's payload (empty for a breadcrumb).
    pub text: Vec<u8>,
}

impl From<Result<Breadcrumb, Reject>> for Message {
    fn from(r: Result<Breadcrumb, Reject>) -> Self {
        Message::One(r)
    }
}

impl Message {
    /// Adds an [`ENCODINGS`] bit to every breadcrumb of the message.
    fn note(&mut self, bit: usize) {
        let mark = |r: &mut Result<Breadcrumb, Reject>| {
            if let Ok(bc) = r {
                let i = ENCODINGS.iter().position(|e| *e == bc.encoding).unwrap_or(0);
                bc.encoding = ENCODINGS[i | bit];
            }
        };
        match self {
            Message::One(r) => mark(r),
            Message::Batch(els) => els.iter_mut().for_each(|e| mark(&mut e.result)),
        }
    }
}

/// Parses one Kafka message, whose payload may be null (a tombstone: an `empty_message`),
/// into its records: one, or each of several (a JSON array, NDJSON, CSV lines).
pub fn parse_records(payload: Option<&[u8]>) -> Message {
    match payload {
        Some(p) => records(p),
        None => Message::One(Err(reject(rules::EMPTY, "null payload (a Kafka tombstone)"))),
    }
}

/// Parses a payload that holds one record into a breadcrumb or a reject (a JSON array of
/// records, or NDJSON, is a `not_a_breadcrumb` reject here: [`parse_records`] splits it).
pub fn parse(payload: &[u8]) -> Result<Breadcrumb, Reject> {
    match records(payload) {
        Message::One(r) => r,
        Message::Batch(e) => Err(reject(rules::NOT_A_BREADCRUMB, format!("a batch of {} records in one message, expected one", e.len()))),
    }
}

fn records(payload: &[u8]) -> Message {
    // What feeds send: a flat object in ASCII. The fast path reads it without a separate UTF-8
    // pass (it declines any byte outside ASCII, and ASCII text is UTF-8).
    if let Some(p) = flat::plain(payload, flat::Text::Ascii) {
        return from_fields(&p, false, false).into();
    }
    if let Some(f) = flat::fields(payload, flat::Text::Ascii) {
        return from_fields(&f, false, false).into();
    }
    match inflate_payload(payload) {
        Inflated::No => parse_text(payload, true),
        Inflated::Yes(text) => {
            let mut m = parse_text(&text, false);
            m.note(COMPRESSED);
            m
        }
        Inflated::Broken(why) => Message::One(Err(reject(rules::INVALID_JSON, why))),
    }
}

/// The records of a JSON array (`text` is valid JSON: serde has read it whole). Every element
/// is read as a payload of its own; an empty array is an `empty_message` reject (a message never
/// vanishes without a trace); an array inside an array is a reject, not split further.
fn batch(text: &str) -> Message {
    match array_spans(text) {
        Ok(spans) if spans.is_empty() => Message::One(Err(reject(rules::EMPTY, "an empty JSON array"))),
        Ok(spans) => split(text.as_bytes(), spans, "element", "a JSON array inside a JSON array"),
        Err(why) => Message::One(Err(reject(rules::INVALID_JSON, format!("a JSON array {why}")))),
    }
}

/// Where each element of the JSON array `text` is (whitespace around it allowed; serde_json
/// checks each element, only its end is wanted here), or why `text` is not one (`a JSON array
/// {why}` reads as a sentence). Text after the closing `]` is not looked at.
pub(crate) fn array_spans(text: &str) -> Result<Vec<std::ops::Range<usize>>, String> {
    let b = text.as_bytes();
    let skip_ws = |i| flat::skip_ws(b, i);
    let mut spans = Vec::new();
    let mut i = skip_ws(0);
    if b.get(i) != Some(&b'[') {
        return Err("that does not start with [".into());
    }
    i = skip_ws(i + 1);
    if b.get(i) == Some(&b']') {
        return Ok(spans);
    }
    loop {
        let mut one = serde_json::Deserializer::from_str(&text[i..]).into_iter::<serde::de::IgnoredAny>();
        match one.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("with an element that is not JSON: {e}")),
            None => return Err("cut short".into()),
        }
        let end = i + one.byte_offset();
        spans.push(i..end);
        i = skip_ws(end);
        match b.get(i) {
            Some(b',') => i = skip_ws(i + 1),
            Some(b']') => return Ok(spans),
            _ => return Err("without , or ] after an element".into()),
        }
    }
}

/// The records of a batch whose pieces are `spans` of `b`, each read as a payload of its own;
/// a piece that is itself a batch is a reject (`nested`). Rejects name the piece: `{what} 3 of 120`.
fn split(b: &[u8], spans: Vec<std::ops::Range<usize>>, what: &str, nested: &str) -> Message {
    let n = spans.len();
    let elements = spans
        .into_iter()
        .enumerate()
        .map(|(k, span)| {
            let el = &b[span];
            let result = match el.first() {
                Some(b'[') => Err(reject(rules::NOT_A_BREADCRUMB, nested)),
                _ => match parse_text(el, false) {
                    Message::One(r) => r,
                    Message::Batch(_) => Err(reject(rules::NOT_A_BREADCRUMB, nested)),
                },
            };
            let result = result.map_err(|r| Reject { rule: r.rule, message: format!("{what} {} of {n}: {}", k + 1, r.message) });
            let text = if result.is_err() { el.to_vec() } else { Vec::new() };
            Element { result, text }
        })
        .collect();
    Message::Batch(elements)
}

/// Several JSON values one after another (NDJSON: a producer that batches records as lines),
/// as their spans; `None` unless there are at least two and all of them are JSON.
fn concatenated(text: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(v) = values.next() {
        v.ok()?;
        start = flat::skip_ws(b, start);
        let end = values.byte_offset();
        spans.push(start..end);
        start = end;
    }
    (spans.len() > 1).then_some(spans)
}

/// A batch of lines (CSV lines, or NDJSON with a broken line), one record per line.
fn by_lines(text: &str, spans: Vec<std::ops::Range<usize>>) -> Message {
    split(text.as_bytes(), spans, "line", "a JSON array inside a batch of lines")
}

/// Whether a text starts (after whitespace) like a JSON object, array or string.
fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[' | b'"'))
}

/// The non-blank lines of a text (without their `\r`), as spans, when there are several.
fn lines(text: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if !body.trim().is_empty() {
            spans.push(start..start + body.len());
        }
        start += line.len();
    }
    (spans.len() > 1).then_some(spans)
}

/// What [`inflate_payload`] made of a payload.
enum Inflated {
    /// Not compressed (or not recognisably): read it as it is.
    No,
    /// gzip or zlib data, inflated.
    Yes(Vec<u8>),
    /// gzip's magic bytes, but the data does not inflate.
    Broken(String),
}

/// Largest text a compressed payload may inflate to: a breadcrumb is a few hundred bytes, a
/// batch of them in one message (a JSON array) a few MB; the bound keeps a zip bomb out.
const MAX_INFLATED: u64 = 64 << 20;

/// Producers that compress each message themselves send gzip (magic `1f 8b`) or zlib (a
/// two-byte header whose big-endian value is a multiple of 31, method 8). A text payload can
/// start like a zlib header (a CSV line starting with "80" does), so zlib counts only if the
/// whole payload inflates; gzip's magic is not text, so gzip that does not inflate is rejected
/// naming the cause.
fn inflate_payload(payload: &[u8]) -> Inflated {
    use std::io::Read;
    let inflate = |r: &mut dyn Read| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        r.take(MAX_INFLATED + 1).read_to_end(&mut out).map_err(|e| e.to_string())?;
        if out.len() as u64 > MAX_INFLATED {
            return Err(format!("inflates to more than {MAX_INFLATED} bytes"));
        }
        Ok(out)
    };
    match payload {
        [0x1f, 0x8b, ..] => match inflate(&mut flate2::read::MultiGzDecoder::new(payload)) {
            Ok(text) => Inflated::Yes(text),
            Err(e) => Inflated::Broken(format!("gzip payload that does not inflate: {e}")),
        },
        [a, b, ..] if a & 0x0f == 8 && a >> 4 <= 7 && (u16::from(*a) << 8 | u16::from(*b)) % 31 == 0 => {
            let mut d = flate2::read::ZlibDecoder::new(payload);
            match inflate(&mut d) {
                Ok(text) if d.total_in() == payload.len() as u64 => Inflated::Yes(text),
                _ => Inflated::No,
            }
        }
        _ => Inflated::No,
    }
}

/// [`parse`] for a payload that is (or should be) text; `fast_tried`: the fast path already
/// declined these bytes.
fn parse_text(payload: &[u8], fast_tried: bool) -> Message {
    // A UTF-8 byte-order mark (some Windows tools write one) is not part of the record.
    let (payload, fast_tried) = match payload.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (rest, false),
        None => (payload, fast_tried),
    };
    if !fast_tried {
        if let Some(f) = flat::fields(payload, flat::Text::Ascii) {
            return from_fields(&f, false, false).into();
        }
    }
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Message::One(Err(reject(rules::EMPTY, "message is empty")));
    }
    if let Some(text) = utf16_text(payload) {
        return match text {
            Ok(text) => parse_text(text.as_bytes(), false),
            Err(e) => Message::One(Err(reject(rules::INVALID_JSON, e))),
        };
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => return Message::One(Err(reject(rules::INVALID_JSON, format!("not UTF-8 text: {e}")))),
    };
    if let Some(f) = flat::fields(text.as_bytes(), flat::Text::Utf8) {
        return from_fields(&f, false, false).into();
    }
    if !looks_like_json(text) && text.contains(',') {
        // Several CSV lines in one message (a chunk of an export): one record per line.
        if let Some(spans) = lines(text) {
            return by_lines(text, spans);
        }
        return parse_csv_line(text).into();
    }
    parse_general(text)
}

/// A payload in UTF-16, as UTF-8 text: with a byte-order mark (what Windows tools such as
/// PowerShell write), or without one when its first two characters are ASCII with a zero byte
/// beside each (`{\0"\0`: UTF-8 text never has those zeros). `None`: not UTF-16; an error names
/// what does not decode (an odd length, an unpaired surrogate).
fn utf16_text(p: &[u8]) -> Option<Result<String, String>> {
    let ascii = |b: u8| b.is_ascii_graphic() || b.is_ascii_whitespace();
    let (little, units) = match p {
        [0xff, 0xfe, rest @ ..] => (true, rest),
        [0xfe, 0xff, rest @ ..] => (false, rest),
        [a, 0, b, 0, ..] if ascii(*a) && ascii(*b) => (true, p),
        [0, a, 0, b, ..] if ascii(*a) && ascii(*b) => (false, p),
        _ => return None,
    };
    if units.len() % 2 != 0 {
        return Some(Err(format!("UTF-16 payload of an odd length ({} bytes)", p.len())));
    }
    let units = units.chunks_exact(2).map(|u| if little { u16::from_le_bytes([u[0], u[1]]) } else { u16::from_be_bytes([u[0], u[1]]) });
    Some(char::decode_utf16(units).collect::<Result<String, _>>().map_err(|e| format!("UTF-16 payload that does not decode: {e}")))
}

/// TriMet's CSV column order: the 10-field feed, then the older 14-field one (KNOWN indices).
const CSV_10: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const CSV_14: [usize; 14] = [0, 1, 2, 3, 4, 5, 10, 11, 12, 6, 7, 8, 9, 13];

/// A message that is one CSV line of a breadcrumb export, without its header (producers that
/// forward TriMet's CSV files line by line): 10 or 14 fields in TriMet's column order
/// (`EVENT_NO_TRIP,EVENT_NO_STOP,OPD_DATE,VEHICLE_ID,METERS,ACT_TIME,[VELOCITY,DIRECTION,
/// RADIO_QUALITY,]GPS_LONGITUDE,GPS_LATITUDE,GPS_SATELLITES,GPS_HDOP[,SCHEDULE_DEVIATION]`);
/// fields may be double-quoted; an empty field is missing. Then validated like any record.
fn parse_csv_line(text: &str) -> Result<Breadcrumb, Reject> {
    let line = text.trim();
    let values: Vec<&str> = line
        .split(',')
        .map(|v| {
            let v = v.trim();
            v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v)
        })
        .collect();
    let order: &[usize] = match values.len() {
        10 => &CSV_10,
        14 => &CSV_14,
        n => {
            return Err(reject(
                rules::INVALID_JSON,
                format!("not JSON, nor a TriMet CSV line ({n} comma-separated fields; 10 or 14 expected)"),
            ))
        }
    };
    if values[0].eq_ignore_ascii_case(KNOWN[0]) {
        return Err(reject(rules::NOT_A_BREADCRUMB, "a CSV header line"));
    }
    let mut known: [Option<Scalar<'_>>; 14] = Default::default();
    for (&i, v) in order.iter().zip(values) {
        known[i] = Some(Scalar::Str(Cow::Borrowed(v)));
    }
    from_fields(&Fields { known, extra: Vec::new() }, false, true)
}

/// Any JSON payload, through serde_json (what [`flat`] declines).
fn parse_general(text: &str) -> Message {
    match serde_json::from_str::<Top<'_>>(text) {
        Ok(Top::Array) => batch(text),
        Ok(top) => parse_top(top, 0),
        Err(e) => match concatenated(text) {
            // NDJSON: several records, one after another.
            Some(spans) => split(text.as_bytes(), spans, "record", "a JSON array inside a batch of records"),
            // NDJSON with a broken line: when the first line is a whole JSON value, every line is
            // a record (the broken one a reject); otherwise one broken value (say a pretty-printed
            // object cut short) stays one reject.
            None => match lines(text) {
                Some(spans) if serde_json::from_slice::<serde::de::IgnoredAny>(&text.as_bytes()[spans[0].clone()]).is_ok() => by_lines(text, spans),
                _ => Message::One(Err(reject(rules::INVALID_JSON, format!("not JSON: {e}")))),
            },
        },
    }
}

/// The fast path: one flat JSON object whose keys and string values hold no escapes, and whose
/// values are strings, numbers or null — what real breadcrumb feeds send, and ~3× faster than
/// going through serde's visitors. Anything else (escapes, nesting, booleans, malformed text,
/// `-0`) is declined with `None`, and [`parse_general`] decides, errors included; both paths
/// give the same `Fields` (a test checks them against each other).
mod flat {
    use super::{known_index, take_digits, Fields, Scalar, POW10};
    use std::borrow::Cow;

    /// What the bytes are known to be.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(super) enum Text {
        /// Not checked: the scanner declines any byte outside ASCII (so what it accepts is
        /// ASCII, hence UTF-8, and no separate validation pass is needed).
        Ascii,
        /// Valid UTF-8 (checked by the caller): strings may hold any character.
        Utf8,
    }

    pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// A string starting after its opening quote at `start`: where its text starts and where its
    /// closing quote is. `None` on an escape, a control character, or (`Text::Ascii`) a byte
    /// outside ASCII.
    fn string(b: &[u8], start: usize, text: Text) -> Option<(usize, usize)> {
        let limit = if text == Text::Ascii { 0x80 } else { 0x100 };
        let mut j = start;
        while j < b.len() {
            match b[j] {
                b'"' => return Some((start, j)),
                b'\\' | 0..=0x1f => return None,
                c if u16::from(c) >= limit => return None,
                _ => j += 1,
            }
        }
        None
    }

    /// `b[a..b]` as text, where every byte was seen by the scanner: in `Text::Ascii` mode all
    /// of them are ASCII; in `Text::Utf8` mode `b` is valid UTF-8 and `a`, `b` are positions of
    /// ASCII bytes (quotes, the first digit or sign of a number, the byte after its last digit)
    /// or the end, so both are char boundaries.
    fn sub(bytes: &[u8], a: usize, b: usize) -> &str {
        debug_assert!(std::str::from_utf8(&bytes[a..b]).is_ok());
        // SAFETY: see above: the slice is ASCII, or a slice of valid UTF-8 between char
        // boundaries; `a <= b <= len` holds for every position the scanner hands over.
        unsafe { std::str::from_utf8_unchecked(bytes.get_unchecked(a..b)) }
    }

    /// A number by JSON's grammar starting at `start`, as serde_json would give it: integers
    /// that fit i64/u64 exactly, short decimals as f64 (read in the same pass that finds the
    /// number's end; see `super::decimal` for why one division rounds as `str::parse` does);
    /// `None` for what only serde_json can round the way it does (exponents, decimals of more
    /// than 15 digits) and for `-0`.
    fn number(b: &[u8], start: usize) -> Option<(Scalar<'_>, usize)> {
        let (n, j) = number_token(b, start)?;
        let s = match n {
            Token::Int(v) => Scalar::Num(v as f64, v.into()),
            Token::UInt(v) => Scalar::Num(v as f64, v.into()),
            Token::Float(v) => Scalar::Num(v, serde_json::Number::from_f64(v)?),
        };
        Some((s, j))
    }

    /// A JSON number as serde_json reads it: an integer that fits i64 (else u64), or a float.
    enum Token {
        Int(i64),
        UInt(u64),
        Float(f64),
    }

    impl Token {
        /// The value as [`Scalar::Num`] holds it.
        fn f64(&self) -> f64 {
            match *self {
                Token::Int(v) => v as f64,
                Token::UInt(v) => v as f64,
                Token::Float(v) => v,
            }
        }
    }

    /// [`number`]'s reading, before it is made a [`Scalar`].
    #[inline]
    fn number_token(b: &[u8], start: usize) -> Option<(Token, usize)> {
        let neg = b[start] == b'-';
        let mut j = start + usize::from(neg);
        let mut mantissa = 0u64;
        let mut digits = match b.get(j)? {
            b'0' => {
                j += 1;
                1
            }
            b'1'..=b'9' => take_digits(b, &mut j, &mut mantissa),
            _ => return None,
        };
        let mut scale = 0usize;
        if b.get(j) == Some(&b'.') {
            j += 1;
            scale = take_digits(b, &mut j, &mut mantissa);
            digits += scale;
            if scale == 0 {
                return None;
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            return None;
        }
        if scale == 0 {
            if neg && mantissa == 0 {
                return None; // -0
            }
            // Up to 18 digits cannot overflow an i64 (nor wrap above).
            if digits <= 18 {
                let v = if neg { -(mantissa as i64) } else { mantissa as i64 };
                return Some((Token::Int(v), j));
            }
            let tok = sub(b, start, j);
            if let Ok(v) = tok.parse::<i64>() {
                return Some((Token::Int(v), j));
            }
            let v = tok.parse::<u64>().ok()?;
            return Some((Token::UInt(v), j));
        }
        if digits > 15 {
            return None;
        }
        let v = mantissa as f64 / POW10[scale];
        Some((Token::Float(if neg { -v } else { v }), j))
    }

    /// A record [`plain`] read: every key a known field, at most once.
    pub(super) struct Plain<'a> {
        /// Numeric fields' values (where `numbers` has their bit).
        pub(super) values: [f64; 14],
        /// Bit `i`: field `i` holds a number.
        pub(super) numbers: u16,
        /// Bit `i`: ... read from a string.
        pub(super) strings: u16,
        /// Bit `i`: field `i` was in the record (a null or an empty string included).
        pub(super) present: u16,
        /// OPD_DATE's text (`None`: missing or null).
        pub(super) date: Option<&'a str>,
    }

    /// A known field's name with its quotes (`"METERS"`, 8 to 20 bytes) as up to three
    /// overlapping 8-byte words, to recognise the name with three loads and compares.
    struct Quoted {
        len: usize,
        offsets: [usize; 3],
        words: [u64; 3],
    }

    const fn quoted(name: &str) -> Quoted {
        let n = name.as_bytes();
        let len = n.len() + 2;
        // Words at 0, 8 (or len − 8 when shorter than 16) and len − 8 cover every byte.
        let offsets = [0, if len > 16 { 8 } else { len - 8 }, len - 8];
        let mut words = [0u64; 3];
        let mut w = 0;
        while w < 3 {
            let mut x = 0u64;
            let mut j = 0;
            while j < 8 {
                let at = offsets[w] + j;
                let c = if at == 0 || at == len - 1 { b'"' } else { n[at - 1] };
                x |= (c as u64) << (8 * j);
                j += 1;
            }
            words[w] = x;
            w += 1;
        }
        Quoted { len, offsets, words }
    }

    /// [`super::KNOWN`], quoted.
    const QUOTED: [Quoted; 14] = {
        let mut q = [const { Quoted { len: 0, offsets: [0; 3], words: [0; 3] } }; 14];
        let mut i = 0;
        while i < 14 {
            q[i] = quoted(super::KNOWN[i]);
            i += 1;
        }
        q
    };

    /// The known field whose name sorts first (ACT_TIME).
    pub(super) const SORTED_FIRST: usize = 5;
    /// The known field whose name sorts right after field `i`'s (14, none, after the last).
    pub(super) const SORTED_NEXT: [usize; 14] = {
        let mut next = [14; 14];
        let mut i = 0;
        while i < 14 {
            let mut j = 0;
            while j < 14 {
                // The least name greater than KNOWN[i].
                if name_lt(super::KNOWN[i], super::KNOWN[j]) && (next[i] == 14 || name_lt(super::KNOWN[j], super::KNOWN[next[i]])) {
                    next[i] = j;
                }
                j += 1;
            }
            i += 1;
        }
        next
    };

    /// `a < b` byte-wise (`str`'s order, in a const context).
    const fn name_lt(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let mut i = 0;
        while i < a.len() && i < b.len() {
            if a[i] != b[i] {
                return a[i] < b[i];
            }
            i += 1;
        }
        a.len() < b.len()
    }

    /// Whether `b[at..]` starts with known field `k`'s name in quotes.
    #[inline]
    pub(super) fn is_quoted(b: &[u8], at: usize, k: usize) -> bool {
        let Some(q) = QUOTED.get(k) else { return false };
        let Some(s) = b.get(at..at + q.len) else { return false };
        let word = |o: usize| u64::from_le_bytes(s[o..o + 8].try_into().expect("8 bytes"));
        (0..3).all(|w| word(q.offsets[w]) == q.words[w])
    }

    /// The fastest path, for what nearly every feed sends: a flat object whose keys are all known
    /// fields, each once, whose OPD_DATE is a string or null and whose other values are numbers,
    /// bare decimals in strings (`"45.52"`), nulls or missing-value strings (`""`, `"null"`,
    /// `"NaN"`). Each value is read into its number as it is scanned, with no [`Scalar`] nor
    /// [`Fields`] in between. Anything else is declined with `None` ([`fields`] then reads it);
    /// what it accepts gives the same breadcrumb as [`fields`] would (tested on every shape).
    pub(super) fn plain(b: &[u8], text: Text) -> Option<Plain<'_>> {
        let mut p = Plain { values: [0.0; 14], numbers: 0, strings: 0, present: 0, date: None };
        // Feeds send the fields in one order: TriMet's (`KNOWN`'s), or sorted by name (what
        // serializers of maps write: serde_json, Go, Python's `sort_keys`). The names that follow
        // in either order are tried before the name is scanned and looked up.
        let (mut expect, mut expect_sorted) = (0, SORTED_FIRST);
        let key = |i: usize| {
            let (k, ke) = if is_quoted(b, i, expect) {
                (expect, i + QUOTED[expect].len - 1)
            } else if is_quoted(b, i, expect_sorted) {
                (expect_sorted, i + QUOTED[expect_sorted].len - 1)
            } else {
                let (ks, ke) = string(b, i + 1, text)?;
                (known_index(sub(b, ks, ke))?, ke)
            };
            expect = k + 1;
            expect_sorted = SORTED_NEXT[k];
            Some((k, ke))
        };
        let value = |k: usize, i: usize| {
            let bit = 1u16 << k;
            if p.present & bit != 0 {
                return None;
            }
            p.present |= bit;
            let end = match *b.get(i)? {
                b'"' => 'string: {
                    // A string number, read straight up to its closing quote.
                    if k != super::OPD_DATE {
                        if let Some((v, end)) = super::decimal_at(b, i + 1).filter(|&(_, end)| b.get(end) == Some(&b'"')) {
                            p.values[k] = v;
                            p.numbers |= bit;
                            p.strings |= bit;
                            break 'string end + 1;
                        }
                    }
                    let (vs, ve) = string(b, i + 1, text)?;
                    let s = sub(b, vs, ve);
                    // (Not a bare decimal: the date, a missing value, or something `fields` reads.)
                    if k == super::OPD_DATE {
                        p.date = Some(s);
                    } else if !super::missing_text(s) {
                        return None;
                    }
                    ve + 1
                }
                b'n' if b[i..].starts_with(b"null") => i + 4,
                b'-' | b'0'..=b'9' if k != super::OPD_DATE => {
                    let (v, end) = number_token(b, i)?;
                    p.values[k] = v.f64();
                    p.numbers |= bit;
                    end
                }
                _ => return None,
            };
            Some(end)
        };
        object(b, key, value)?;
        Some(p)
    }

    /// The fields of `b` if it is a flat object the fast path can read.
    pub(super) fn fields(b: &[u8], text: Text) -> Option<Fields<'_>> {
        let mut f = Fields {
            known: Default::default(),
            extra: Vec::new(),
        };
        let key = |i: usize| {
            let (ks, ke) = string(b, i + 1, text)?;
            Some((sub(b, ks, ke), ke))
        };
        let value = |key, i: usize| {
            let (value, end) = match *b.get(i)? {
                b'"' => {
                    let (vs, ve) = string(b, i + 1, text)?;
                    (Scalar::Str(Cow::Borrowed(sub(b, vs, ve))), ve + 1)
                }
                b'n' if b[i..].starts_with(b"null") => (Scalar::Null, i + 4),
                b'-' | b'0'..=b'9' => number(b, i)?,
                _ => return None,
            };
            match known_index(key) {
                Some(k) if f.known[k].is_none() => f.known[k] = Some(value),
                _ => f.extra.push((Cow::Borrowed(key), value)),
            }
            Some(end)
        };
        object(b, key, value)?;
        Some(f)
    }

    /// Walks the flat JSON object that `b` is (whitespace around it and its tokens allowed),
    /// the scanners' shared skeleton: for each member, `key(i)` reads the key whose opening
    /// quote is at `i` and says where its closing quote is, `value(key, j)` reads the value
    /// starting at `j` and says where it ends. `None` (declined) if either does, or if `b` is not
    /// braces around members separated by commas.
    #[inline]
    fn object<K>(b: &[u8], mut key: impl FnMut(usize) -> Option<(K, usize)>, mut value: impl FnMut(K, usize) -> Option<usize>) -> Option<()> {
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let (k, ke) = key(i)?;
                i = skip_ws(b, ke + 1);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(b, value(k, skip_ws(b, i + 1))?);
                match b.get(i)? {
                    b',' => i = skip_ws(b, i + 1),
                    b'}' => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_ws(b, i) == b.len()).then_some(())
    }
}


fn parse_top(top: Top<'_>, depth: usize) -> Message {
    match top {
        Top::Record(f) => from_fields(&*f, depth > 0, false).into(),
        Top::Str(s) => {
            // Double (or more) encoded: a JSON string holding the JSON object (or array).
            if depth >= 3 {
                return Message::One(Err(reject(rules::NOT_A_BREADCRUMB, "a JSON string nested too deep")));
            }
            if let Some(p) = flat::plain(s.as_bytes(), flat::Text::Utf8) {
                return from_fields(&p, true, false).into();
            }
            if let Some(f) = flat::fields(s.as_bytes(), flat::Text::Utf8) {
                return from_fields(&f, true, false).into();
            }
            match serde_json::from_str::<Top<'_>>(&s) {
                Ok(Top::Array) if depth == 0 => {
                    let mut m = batch(&s);
                    m.note(DOUBLE_ENCODED);
                    m
                }
                Ok(inner) => parse_top(inner, depth + 1),
                // A CSV line sent as a JSON string (a producer that JSON-encodes every line).
                Err(_) if !looks_like_json(&s) && s.contains(',') => {
                    let mut m = Message::One(parse_csv_line(&s));
                    m.note(DOUBLE_ENCODED);
                    m
                }
                Err(e) => Message::One(Err(reject(rules::INVALID_JSON, format!("a JSON string that is not JSON inside: {e}")))),
            }
        }
        Top::Array => Message::One(Err(reject(rules::NOT_A_BREADCRUMB, "a JSON array nested in JSON strings"))),
        Top::Other(kind) => Message::One(Err(reject(rules::NOT_A_BREADCRUMB, format!("a JSON {kind}, expected a breadcrumb object")))),
    }
}

/// ACT_TIME written as a clock, `H:MM:SS` (hours may exceed 23 past midnight), in seconds.
fn clock_seconds(v: &Scalar<'_>) -> Option<i64> {
    let Scalar::Str(s) = v else { return None };
    let mut it = s.trim().split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next().unwrap_or("0"));
    if it.next().is_some() {
        return None;
    }
    let (h, m, sec): (i64, i64, f64) = (h.trim().parse().ok()?, m.trim().parse().ok()?, sec.trim().parse().ok()?);
    ((0..60).contains(&m) && (0.0..61.0).contains(&sec) && h >= 0).then(|| h * 3600 + m * 60 + sec.round() as i64)
}

/// `f.round() as i64`, without the call to libm's `round` for the whole numbers most fields hold.
fn round_i64(f: f64) -> i64 {
    let t = f as i64;
    if t as f64 == f {
        t
    } else {
        f.round() as i64
    }
}

/// Index of OPD_DATE in [`KNOWN`].
const OPD_DATE: usize = 2;
/// Index of ACT_TIME in [`KNOWN`].
const ACT_TIME: usize = 5;

/// OPD_DATE's value as a date.
fn service_date_of(v: Option<&Scalar<'_>>) -> Result<NaiveDate, Reject> {
    match v {
        Some(Scalar::Str(s)) if !s.trim().is_empty() => {
            service_date_cached(s).ok_or_else(|| reject(rules::BAD_DATE, format!("OPD_DATE {s:?} is in no known format")))
        }
        Some(Scalar::Null) | None => Err(reject(rules::BAD_DATE, "OPD_DATE is missing")),
        Some(Scalar::Str(_)) => Err(reject(rules::BAD_DATE, "OPD_DATE is empty")),
        Some(other) => Err(reject(rules::BAD_DATE, format!("OPD_DATE {} is not a date string", other.to_value()))),
    }
}

/// A record's fields as [`from_fields`] reads them, whichever path found them.
trait Record {
    /// How many known fields the record has (null or empty values included).
    fn known(&self) -> usize;
    /// Known field `i` (not OPD_DATE) as a number.
    fn num(&self, i: usize) -> Num;
    /// OPD_DATE as a date (see [`service_date_of`]).
    fn date(&self) -> Result<NaiveDate, Reject>;
    /// ACT_TIME written as a clock (`H:MM:SS`), in seconds.
    fn clock(&self) -> Option<i64>;
    /// The unknown fields' names and values.
    fn extra(&self) -> &[(Cow<'_, str>, Scalar<'_>)];
}

impl Record for Fields<'_> {
    fn known(&self) -> usize {
        self.known.iter().filter(|v| v.is_some()).count()
    }
    fn num(&self, i: usize) -> Num {
        self.known[i].as_ref().map_or(Num::Missing, Scalar::num)
    }
    fn date(&self) -> Result<NaiveDate, Reject> {
        service_date_of(self.known[OPD_DATE].as_ref())
    }
    fn clock(&self) -> Option<i64> {
        self.known[ACT_TIME].as_ref().and_then(clock_seconds)
    }
    fn extra(&self) -> &[(Cow<'_, str>, Scalar<'_>)] {
        &self.extra
    }
}

impl Record for flat::Plain<'_> {
    fn known(&self) -> usize {
        self.present.count_ones() as usize
    }
    #[inline]
    fn num(&self, i: usize) -> Num {
        if self.numbers >> i & 1 == 1 {
            Num::Value(self.values[i], self.strings >> i & 1 == 1)
        } else {
            Num::Missing
        }
    }
    fn date(&self) -> Result<NaiveDate, Reject> {
        let null = self.present >> OPD_DATE & 1 == 1;
        service_date_of(self.date.map(|s| Scalar::Str(Cow::Borrowed(s))).or(null.then_some(Scalar::Null)).as_ref())
    }
    fn clock(&self) -> Option<i64> {
        // (`plain` declines any ACT_TIME string but a bare decimal, and a clock is not one.)
        None
    }
    fn extra(&self) -> &[(Cow<'_, str>, Scalar<'_>)] {
        &[]
    }
}

fn from_fields(f: &impl Record, double_encoded: bool, csv: bool) -> Result<Breadcrumb, Reject> {
    let extra = f.extra();
    let n_known = f.known();
    if n_known == 0 {
        let fields: Vec<&str> = extra.iter().map(|(k, _)| k.as_ref()).take(6).collect();
        return Err(reject(rules::NOT_A_BREADCRUMB, format!("no breadcrumb fields (has: {})", fields.join(", "))));
    }
    let num = |i: usize| f.num(i);
    let mut strings = false;
    let mut flags: Vec<&'static str> = Vec::new();
    let mut int_key = |i: usize, missing: &'static str| -> Result<i64, Reject> {
        match num(i) {
            Num::Missing => Err(reject(missing, format!("{} is missing", KNOWN[i]))),
            Num::Value(f, s) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                strings |= s;
                Ok(f as i64)
            }
            Num::Value(f, _) => Err(reject(rules::BAD_KEY, format!("{} = {f} is not an integer", KNOWN[i]))),
            Num::Bad(s) => Err(reject(rules::BAD_KEY, format!("{} = {s:?} is not a number", KNOWN[i]))),
        }
    };
    let trip_id = int_key(0, rules::MISSING_TRIP)?;
    let vehicle_id = int_key(3, rules::MISSING_VEHICLE)?;
    let service_date = f.date()?;
    let act_time = match f.clock() {
        Some(t) => Num::Value(t as f64, true),
        None => num(ACT_TIME),
    };
    let act_time = match act_time {
        Num::Missing => return Err(reject(rules::BAD_TIME, "ACT_TIME is missing")),
        Num::Bad(s) => return Err(reject(rules::BAD_TIME, format!("ACT_TIME {s:?} is not a number"))),
        Num::Value(f, s) => {
            strings |= s;
            let t = round_i64(f);
            if !(0..=rules::MAX_ACT_TIME).contains(&t) {
                return Err(reject(rules::BAD_TIME, format!("ACT_TIME {t} is outside 0..={}", rules::MAX_ACT_TIME)));
            }
            t
        }
    };
    let event_time_us = event_time_us(service_date, act_time).ok_or_else(|| reject(rules::BAD_TIME, "ACT_TIME gives no valid instant"))?;
    let mut opt = |i: usize| -> Option<f64> {
        match num(i) {
            Num::Missing => None,
            Num::Value(f, s) => {
                strings |= s;
                Some(f)
            }
            Num::Bad(_) => {
                if !flags.contains(&rules::BAD_OPTIONAL) {
                    flags.push(rules::BAD_OPTIONAL);
                }
                None
            }
        }
    };
    let stop_event_id = opt(1).map(round_i64);
    let meters = opt(4).map(round_i64);
    let longitude = opt(6);
    let latitude = opt(7);
    let satellites = opt(8).map(|f| if f.fract() == 0.0 { f as i32 } else { f.round() as i32 });
    let hdop = opt(9);
    let velocity = opt(10);
    let direction = opt(11);
    let radio_quality = opt(12);
    let schedule_deviation = opt(13).map(round_i64);
    // Soft rules.
    match (latitude, longitude) {
        (Some(la), Some(lo)) => {
            let (a, b) = rules::LAT_RANGE;
            let (c, d) = rules::LON_RANGE;
            if !(a..=b).contains(&la) || !(c..=d).contains(&lo) {
                flags.push(rules::OUTSIDE_AREA);
            }
        }
        _ => flags.push(rules::NO_POSITION),
    }
    if hdop.is_some_and(|h| h > rules::MAX_HDOP || h < 0.0) {
        flags.push(rules::HDOP_HIGH);
    }
    if satellites.is_some_and(|s| !(rules::SATELLITES_RANGE.0..=rules::SATELLITES_RANGE.1).contains(&s)) {
        flags.push(rules::SATELLITES);
    }
    let bits = usize::from(n_known > 10)
        | (usize::from(double_encoded) << 1)
        | (usize::from(strings && !csv) << 2)
        | (usize::from(!extra.is_empty()) << 3)
        | (usize::from(csv) << 4);
    let extra = if extra.is_empty() {
        None
    } else {
        let m: Map<String, Value> = extra.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect();
        Some(Value::Object(m).to_string())
    };
    Ok(Breadcrumb {
        trip_id,
        stop_event_id,
        vehicle_id,
        service_date,
        act_time: act_time as i32,
        event_time_us,
        meters,
        latitude,
        longitude,
        satellites,
        hdop,
        velocity,
        direction,
        radio_quality,
        schedule_deviation,
        flags,
        extra,
        encoding: ENCODINGS[bits],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn utc(us: i64) -> String {
        DateTime::<Utc>::from_timestamp_micros(us).unwrap().to_rfc3339()
    }

    #[test]
    fn decimal_reads_exactly_what_str_parse_reads() {
        for s in [
            "0",
            "-0",
            "7",
            "-122.867367",
            "45.527212",
            "0.8",
            "12.0",
            "00012.50",
            "999999999999999",
            "0.00000000000001",
            "-0.5",
            "123456789.123456",
        ] {
            assert_eq!(
                decimal(s).map(f64::to_bits),
                Some(s.parse::<f64>().unwrap().to_bits()),
                "{s}"
            );
        }
        // Deterministic sweep over many coordinates and odometer readings.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let s = format!(
                "{}{}.{:0w$}",
                if x & 1 == 1 { "-" } else { "" },
                (x >> 8) % 1000,
                (x >> 20) % 10u64.pow((x >> 60) as u32 % 10 + 1),
                w = (x >> 60) as usize % 10 + 1
            );
            assert_eq!(
                decimal(&s).map(f64::to_bits),
                Some(s.parse::<f64>().unwrap().to_bits()),
                "{s}"
            );
        }
        for s in [
            "",
            "-",
            ".5",
            "5.",
            "1e3",
            "1.2.3",
            " 1",
            "1 ",
            "+1",
            "1234567890123456",
            "0x10",
            "inf",
            "NaN",
        ] {
            assert_eq!(decimal(s), None, "{s:?}");
        }
    }

    #[test]
    fn fast_path_agrees_with_serde_on_every_shape() {
        let base = r#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393162,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38670,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"GPS_SATELLITES":12.0,"GPS_HDOP":0.8}"#;
        let mut cases: Vec<String> = vec![
            base.into(),
            base.replace(':', " : ").replace(',', " ,\n\t"),
            format!("  {base}\r\n"),
            base.replace("218393116", "\"218393116\"")
                .replace("0.8", "\" 0.8 \""),
            base.replace("EVENT_NO_TRIP", "event_no_trip")
                .replace("VEHICLE_ID", " Vehicle_Id "),
            base.replace("12.0", "null").replace("0.8", "\"\""),
            base.replace("-122.867367", "-1.22867367e2")
                .replace("45.527212", "4552.7212E-2"),
            base.replace("38670", "-38670").replace("33160", "33160.4"),
            base.replace("38670", "18446744073709551615")
                .replace("2901", "123456789012345678901234"),
            base.replace("}", r#","ROUTE":"20","X":null,"Y":1.5e3}"#),
            base.replace("}", r#","EVENT_NO_TRIP":7}"#),
            base.replace("OPD_DATE", "OPD_\\u0044ATE"),
            base.replace("OPD_DATE", "\u{feff}OPD_DATE"),
            base.replace("12DEC2022", "12DÉC2022"),
            base.replace("}", ""),
            base.replace("}", "}}"),
            base.replace("}", "} x"),
            base.replace(",", ",,"),
            base.replace("{", "{,"),
            "{}".into(),
            " { } ".into(),
            "{\"a\"}".into(),
            "[]".into(),
        ];
        // GPS_HDOP's 0.8 replaced by values the fast path must decline or read exactly like serde.
        let hdops = [
            "-0", "-0.0", "1e400", "true", "[1]", r#"{"a":1}"#, "01", ".8", "8.", "+8", "8e", "nullx", "nul", r#""a\"b""#, "\"tab\there\"",
        ];
        cases.extend(hdops.iter().map(|v| base.replace("0.8", v)));
        // Integers around the digit-count cut of the fast integer read, and string numbers
        // around `decimal`'s, in an integer field (METERS) and a float field (GPS_HDOP).
        let numbers = [
            "0", "-5", "999999999999999999", "-999999999999999999", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
            "\"12\"", "\" 12\"", "\"12 \"", "\"-0.5\"", "\"1e3\"", "\"NaN\"", "\"null\"", "\"\"", "\"0.123456789012345\"", "\"0.1234567890123456\"",
        ];
        cases.extend(numbers.iter().flat_map(|v| [base.replace("38670", v), base.replace("0.8", v)]));
        // What the plainest path reads itself or must hand on: missing-value strings, dates that
        // are null, empty, padded or numbers, clock times, keys twice, missing or bad keys.
        let plain = [
            ("0.8", "\"NULL\""), ("0.8", "\" NaN \""), ("0.8", "\"  \""), ("0.8", "\"nan\""), ("0.8", "\"0.8x\""),
            ("\"12DEC2022:00:00:00\"", "null"), ("\"12DEC2022:00:00:00\"", "\"\""), ("\"12DEC2022:00:00:00\"", "\" \""),
            ("\"12DEC2022:00:00:00\"", "\" 12DEC2022:00:00:00 \""), ("\"12DEC2022:00:00:00\"", "20221212"), ("\"12DEC2022:00:00:00\"", "\"2022-13-45\""),
            ("33160", "\"9:12:40\""), ("33160", "\"33160\""), ("33160", "\"\""), ("33160", "null"), ("33160", "999999"), ("33160", "-1"),
            ("\"VEHICLE_ID\":2901,", ""), ("\"VEHICLE_ID\":2901", "\"VEHICLE_ID\":null"), ("2901", "\"abc\""), ("2901", "29.5"), ("218393116", "\"\""),
            ("\"GPS_HDOP\":0.8", "\"GPS_HDOP\":0.8,\"GPS_HDOP\":0.9"), ("\"GPS_HDOP\":0.8", "\"GPS_HDOP\":0.8,\"gps_hdop\":null"),
            ("0.8", "0.8,\"VELOCITY\":\"12\",\"DIRECTION\":\"-90.5\",\"RADIO_QUALITY\":null,\"SCHEDULE_DEVIATION\":\"-3\""),
            ("45.527212", "4.5"), ("12.0", "40"), ("0.8", "7.5"), ("45.527212", "\"\""),
        ];
        cases.extend(plain.iter().map(|(a, b)| base.replace(a, b)));
        // Real records: the JSON sample compact and pretty, the CSV sample as all-string objects.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/");
        let json: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{dir}VladChevdar_DataTransport_bcsample_2022-12-12.json"
            ))
            .unwrap(),
        )
        .unwrap();
        for v in json.iter().step_by(7) {
            cases.push(v.to_string());
            cases.push(serde_json::to_string_pretty(v).unwrap());
        }
        let csv = std::fs::read_to_string(format!(
            "{dir}tuannguyen8_data-engineering_bc_veh4223_2023-02-15.csv"
        ))
        .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        for line in lines.step_by(5) {
            let m: Map<String, Value> = header
                .iter()
                .zip(line.split(','))
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            cases.push(Value::Object(m).to_string());
        }
        let (mut fast, mut plainest) = (0, 0);
        for c in &cases {
            fast += usize::from(flat::fields(c.as_bytes(), flat::Text::Ascii).is_some());
            assert_eq!(records(c.as_bytes()), parse_general(c), "{c}");
            // The plainest path against the flat one, in both text modes, where it reads a record.
            for text in [flat::Text::Ascii, flat::Text::Utf8] {
                if let Some(p) = flat::plain(c.as_bytes(), text) {
                    plainest += 1;
                    let f = flat::fields(c.as_bytes(), text).expect("what the plainest path reads, the flat one reads");
                    assert_eq!(from_fields(&p, false, false), from_fields(&f, false, false), "{c}");
                    assert_eq!(from_fields(&p, true, false), from_fields(&f, true, false), "{c}");
                }
            }
        }
        assert!(
            fast > 20,
            "the fast path took only {fast} of {} cases",
            cases.len()
        );
        assert!(plainest > 2 * 40, "the plainest path took only {plainest} of {} cases (×2 modes)", cases.len());
    }

    #[test]
    fn numbers_as_numbers_and_as_strings_give_the_same_row() {
        let a = parse(br#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393162,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38670,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"GPS_SATELLITES":12.0,"GPS_HDOP":0.8}"#).unwrap();
        let b = parse(br#"{"EVENT_NO_TRIP":"218393116","EVENT_NO_STOP":"218393162","OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":"2901","METERS":"38670","ACT_TIME":"33160","GPS_LONGITUDE":"-122.867367","GPS_LATITUDE":"45.527212","GPS_SATELLITES":"12","GPS_HDOP":"0.8"}"#).unwrap();
        assert_eq!(a.encoding, "json");
        assert_eq!(b.encoding, "json+string_numbers");
        assert_eq!(Breadcrumb { encoding: "", ..a.clone() }, Breadcrumb { encoding: "", ..b });
        assert_eq!(a.satellites, Some(12));
        assert!(a.flags.is_empty(), "{:?}", a.flags);
        // 33160 s = 09:12:40 PST = 17:12:40 UTC.
        assert_eq!(utc(a.event_time_us), "2022-12-12T17:12:40+00:00");
    }

    #[test]
    fn missing_values_double_encoding_old_fields_and_extras() {
        let r = parse(br#""{\"EVENT_NO_TRIP\":1,\"VEHICLE_ID\":2,\"OPD_DATE\":\"14-SEP-20\",\"ACT_TIME\":\"100\",\"GPS_HDOP\":\"\",\"GPS_LATITUDE\":null,\"VELOCITY\":\"7\",\"DIRECTION\":\"90\",\"RADIO_QUALITY\":\"\",\"SCHEDULE_DEVIATION\":\"-3\",\"METERS\":\"12\",\"GPS_LONGITUDE\":\"-122.6\",\"GPS_SATELLITES\":\"9\",\"EVENT_NO_STOP\":\"5\",\"ROUTE\":\"20\"}""#).unwrap();
        assert_eq!(r.service_date, NaiveDate::from_ymd_opt(2020, 9, 14).unwrap());
        assert_eq!(r.hdop, None);
        assert_eq!(r.latitude, None);
        assert_eq!(r.velocity, Some(7.0));
        assert_eq!(r.schedule_deviation, Some(-3));
        assert_eq!(r.extra.as_deref(), Some(r#"{"ROUTE":"20"}"#));
        assert!(r.encoding.contains("double_encoded") && r.encoding.contains("14_field") && r.encoding.contains("extra_fields"), "{}", r.encoding);
        assert_eq!(r.flags, vec![rules::NO_POSITION]);
    }

    #[test]
    fn hard_rules_name_the_problem() {
        let cases: [(&[u8], &str); 12] = [
            (b"", rules::EMPTY),
            (b"{\"EVENT_NO_TRIP\":1,", rules::INVALID_JSON),
            (&[0xff, 0xfe, 0x00], rules::INVALID_JSON),
            (b"[1,2]", rules::NOT_A_BREADCRUMB),
            (b"42", rules::NOT_A_BREADCRUMB),
            (br#"{"trip_id":1,"vehicle_number":2,"tstamp":"x"}"#, rules::NOT_A_BREADCRUMB),
            (br#"{"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":1}"#, rules::MISSING_TRIP),
            (br#"{"EVENT_NO_TRIP":1,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":1}"#, rules::MISSING_VEHICLE),
            (br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"yesterday","ACT_TIME":1}"#, rules::BAD_DATE),
            (br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00"}"#, rules::BAD_TIME),
            (br#"{"EVENT_NO_TRIP":"abc","VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":1}"#, rules::BAD_KEY),
            (br#""\"not json inside\"""#, rules::INVALID_JSON),
        ];
        for (input, rule) in cases {
            let e = parse(input).unwrap_err();
            assert_eq!(e.rule, rule, "{:?} → {e:?}", String::from_utf8_lossy(input));
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn soft_rules_flag_but_keep() {
        let r = parse(br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":1,"GPS_LATITUDE":40.0,"GPS_LONGITUDE":-122.6,"GPS_HDOP":9.5,"GPS_SATELLITES":0,"METERS":"x"}"#).unwrap();
        assert_eq!(r.flags, vec![rules::BAD_OPTIONAL, rules::OUTSIDE_AREA, rules::HDOP_HIGH, rules::SATELLITES]);
        assert_eq!(r.meters, None);
    }

    #[test]
    fn event_time_across_dst_and_past_midnight() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        // Spring forward 2023-03-12: 10:00 is PDT (UTC-7).
        assert_eq!(utc(event_time_us(d(2023, 3, 12), 36_000).unwrap()), "2023-03-12T17:00:00+00:00");
        // 01:30 that day is still PST (UTC-8).
        assert_eq!(utc(event_time_us(d(2023, 3, 12), 5_400).unwrap()), "2023-03-12T09:30:00+00:00");
        // 02:30 does not exist: read with the pre-change offset → 10:30 UTC (= 03:30 PDT).
        assert_eq!(utc(event_time_us(d(2023, 3, 12), 9_000).unwrap()), "2023-03-12T10:30:00+00:00");
        // Fall back 2022-11-06: 10:00 is PST (UTC-8).
        assert_eq!(utc(event_time_us(d(2022, 11, 6), 36_000).unwrap()), "2022-11-06T18:00:00+00:00");
        // 01:30 happens twice: the first (PDT).
        assert_eq!(utc(event_time_us(d(2022, 11, 6), 5_400).unwrap()), "2022-11-06T08:30:00+00:00");
        // ACT_TIME past midnight: 90000 s on 2023-02-15 = 01:00 PST on the 16th = 09:00 UTC.
        assert_eq!(utc(event_time_us(d(2023, 2, 15), 90_000).unwrap()), "2023-02-16T09:00:00+00:00");
        // Summer: PDT.
        assert_eq!(utc(event_time_us(d(2023, 7, 1), 0).unwrap()), "2023-07-01T07:00:00+00:00");
    }

    #[test]
    fn cached_event_time_agrees_with_the_time_zone_every_second_of_dst_days() {
        let days = [(2023, 3, 12), (2022, 11, 6), (2023, 2, 15), (2024, 3, 10), (2024, 11, 3), (2007, 3, 11)];
        for (y, m, dd) in days {
            let d = NaiveDate::from_ymd_opt(y, m, dd).unwrap();
            assert_eq!(d.year(), y);
            // Every second of two days in time order, then a scattered order (cache misses).
            for t in (0..2 * 86_400).chain((0..2 * 86_400).map(|i| (i * 7_919) % (2 * 86_400))) {
                assert_eq!(event_time_us(d, t), event_time_us_uncached(d, t), "{d} + {t}s");
            }
        }
    }

    #[test]
    fn other_vintages_lower_case_keys_bom_and_clock_times() {
        let r = parse("{\"\u{feff}event_no_trip\":\"7\",\" vehicle_id \":\"8\",\"opd_date\":\"09/14/2020\",\"act_time\":\"25:00:30\",\"gps_latitude\":\"45.5\",\"gps_longitude\":\"-122.6\"}".as_bytes()).unwrap();
        assert_eq!((r.trip_id, r.vehicle_id, r.act_time), (7, 8, 90_030));
        assert_eq!(r.service_date, NaiveDate::from_ymd_opt(2020, 9, 14).unwrap());
        assert!(r.extra.is_none(), "{:?}", r.extra);
        assert_eq!(parse(br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":"9:99:00"}"#).unwrap_err().rule, rules::BAD_TIME);
    }

    #[test]
    fn csv_lines_of_both_vintages_parse_like_their_json() {
        // The first data row of data/tuannguyen8_..._bc_veh4223_2023-02-15.csv.
        let csv = parse(b"259173279,259173350,15FEB2023:00:00:00,4223,194493,71279,-122.679572,45.517122,8,1.6\r\n").unwrap();
        let json = parse(br#"{"EVENT_NO_TRIP":259173279,"EVENT_NO_STOP":259173350,"OPD_DATE":"15FEB2023:00:00:00","VEHICLE_ID":4223,"METERS":194493,"ACT_TIME":71279,"GPS_LONGITUDE":-122.679572,"GPS_LATITUDE":45.517122,"GPS_SATELLITES":8,"GPS_HDOP":1.6}"#).unwrap();
        assert_eq!(csv.encoding, "csv");
        assert_eq!(Breadcrumb { encoding: "", ..csv }, Breadcrumb { encoding: "", ..json });
        // The older export: VELOCITY, DIRECTION, RADIO_QUALITY after ACT_TIME, SCHEDULE_DEVIATION last; quoted and empty fields.
        let old = parse(br#"152542633,152542642,"14-SEP-20",3017,1076,21036,7,185,,-122.577065,45.548583,11,0.7,-105"#).unwrap();
        assert_eq!(old.encoding, "csv+14_field");
        assert_eq!((old.trip_id, old.vehicle_id, old.act_time, old.meters), (152542633, 3017, 21036, Some(1076)));
        assert_eq!((old.velocity, old.direction, old.radio_quality, old.schedule_deviation), (Some(7.0), Some(185.0), None, Some(-105)));
        assert_eq!((old.longitude, old.latitude, old.satellites, old.hdop), (Some(-122.577065), Some(45.548583), Some(11), Some(0.7)));
        assert_eq!(old.service_date, NaiveDate::from_ymd_opt(2020, 9, 14).unwrap());
        assert!(ENCODINGS.contains(&old.encoding) && encoding_of("csv+14_field") == "csv+14_field");
        // A header line, a line of another shape, and a CSV line with a bad value are named.
        let header = parse(b"EVENT_NO_TRIP,EVENT_NO_STOP,OPD_DATE,VEHICLE_ID,METERS,ACT_TIME,GPS_LONGITUDE,GPS_LATITUDE,GPS_SATELLITES,GPS_HDOP").unwrap_err();
        assert_eq!((header.rule, header.message.as_str()), (rules::NOT_A_BREADCRUMB, "a CSV header line"));
        let stops = parse(b"3649,63075,4774,47,1,W,1300").unwrap_err();
        assert_eq!(stops.rule, rules::INVALID_JSON);
        assert!(stops.message.contains("7 comma-separated fields"), "{}", stops.message);
        assert_eq!(parse(b"x259173279,1,15FEB2023:00:00:00,4223,1,1,,,,").unwrap_err().rule, rules::BAD_KEY);
        assert_eq!(parse(b"1,1,someday,4223,1,1,,,,").unwrap_err().rule, rules::BAD_DATE);
        // JSON that happens to contain commas is still JSON.
        assert_eq!(parse(br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":100"#).unwrap_err().rule, rules::INVALID_JSON);
        // A CSV line sent as a JSON string (quotes inside escaped) reads like the line.
        let line = r#"152542633,152542642,"14-SEP-20",3017,1076,21036,7,185,,-122.577065,45.548583,11,0.7,-105"#;
        let quoted = parse(serde_json::to_string(line).unwrap().as_bytes()).unwrap();
        assert_eq!(quoted.encoding, "csv+14_field+double_encoded");
        assert_eq!(Breadcrumb { encoding: "", ..quoted }, Breadcrumb { encoding: "", ..old });
        let r = parse(br#""3649,63075,4774""#).unwrap_err();
        assert_eq!((r.rule, r.message.contains("3 comma-separated fields")), (rules::INVALID_JSON, true), "{}", r.message);
        assert_eq!(parse(br#""{not json, at all""#).unwrap_err().rule, rules::INVALID_JSON);
    }

    #[test]
    fn a_tombstone_is_an_empty_message_that_says_so() {
        let one = |m: Message| match m {
            Message::One(r) => r,
            other => panic!("{other:?}"),
        };
        let r = one(parse_records(None)).unwrap_err();
        assert_eq!(r.rule, rules::EMPTY);
        assert!(r.message.contains("tombstone"), "{}", r.message);
        assert_eq!(one(parse_records(Some(b""))).unwrap_err().message, "message is empty");
        assert!(one(parse_records(Some(br#"{"EVENT_NO_TRIP":1,"VEHICLE_ID":2,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":100}"#))).is_ok());
    }

    #[test]
    fn a_json_array_is_a_batch_of_records_each_read_on_its_own() {
        let rec = |v: &str, t: i64| format!(r#"{{"EVENT_NO_TRIP":9,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":{v},"ACT_TIME":{t}}}"#);
        let batch_of = |payload: &[u8]| match parse_records(Some(payload)) {
            Message::Batch(els) => els,
            other => panic!("not a batch: {other:?}"),
        };
        // Elements of every shape a single message may have, in order, with what each gives.
        let csv = "259173279,259173350,15FEB2023:00:00:00,4223,194493,71279,-122.679572,45.517122,8,1.6";
        let text = format!(
            " [ {} ,{},\n{}, 42, {}, [1], \"{}\" ] ",
            rec("1", 10),
            rec("\"2\"", 20),
            r#"{"EVENT_NO_TRIP":9,"ACT_TIME":5}"#,
            serde_json::to_string(&rec("3", 30)).unwrap(),
            csv
        );
        let els = batch_of(text.as_bytes());
        assert_eq!(els.len(), 7);
        let ok: Vec<_> = els.iter().filter_map(|e| e.result.as_ref().ok()).map(|b| (b.vehicle_id, b.act_time, b.encoding)).collect();
        assert_eq!(ok, [(1, 10, "json"), (2, 20, "json+string_numbers"), (3, 30, "json+double_encoded"), (4223, 71279, "csv+double_encoded")]);
        let bad: Vec<_> = els.iter().filter_map(|e| e.result.as_ref().err().map(|r| (r.rule, r.message.clone(), String::from_utf8_lossy(&e.text).into_owned()))).collect();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert_eq!(bad[0].0, rules::MISSING_VEHICLE);
        assert!(bad[0].1.starts_with("element 3 of 7: "), "{bad:?}");
        assert_eq!(bad[0].2, r#"{"EVENT_NO_TRIP":9,"ACT_TIME":5}"#, "the element's own text, as sent");
        assert_eq!((bad[1].0, bad[1].1.as_str(), bad[1].2.as_str()), (rules::NOT_A_BREADCRUMB, "element 4 of 7: a JSON number, expected a breadcrumb object", "42"));
        assert_eq!((bad[2].0, bad[2].1.as_str()), (rules::NOT_A_BREADCRUMB, "element 6 of 7: a JSON array inside a JSON array"));
        assert!(els.iter().all(|e| e.result.is_err() != e.text.is_empty()));

        // Compressed, double encoded, UTF-16: the same elements, noted as such.
        let arr = format!("[{},{}]", rec("1", 10), rec("2", 20));
        let enc = |els: Vec<Element>| els.into_iter().map(|e| e.result.unwrap().encoding).collect::<Vec<_>>();
        let zlib = |b: &[u8]| {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(enc(batch_of(&zlib(arr.as_bytes()))), ["json+compressed"; 2]);
        assert_eq!(enc(batch_of(serde_json::to_string(&arr).unwrap().as_bytes())), ["json+double_encoded"; 2]);
        let utf16: Vec<u8> = [&[0xff, 0xfe][..], &arr.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()].concat();
        assert_eq!(enc(batch_of(&utf16)), ["json"; 2]);

        // What does not split: nothing in it, cut short, a separator missing, nested too deep.
        for (payload, rule) in [
            ("[]", rules::EMPTY),
            (" [ \n ] ", rules::EMPTY),
            ("[{\"a\":1},", rules::INVALID_JSON),
            ("[{\"a\":1} {\"b\":2}]", rules::INVALID_JSON),
            ("[1,]", rules::INVALID_JSON),
        ] {
            match parse_records(Some(payload.as_bytes())) {
                Message::One(Err(r)) => assert_eq!(r.rule, rule, "{payload}: {}", r.message),
                other => panic!("{payload}: {other:?}"),
            }
        }
        // NDJSON in one message: one record per value; with a broken line, one per line.
        let nd = format!("{}\n{}\r\n\n{}\n", rec("1", 10), rec("2", 20), rec("3", 30));
        assert_eq!(enc(batch_of(nd.as_bytes())), ["json"; 3]);
        let broken = format!("{}\n{{\"EVENT_NO_TRIP\":9,\n{}", rec("1", 10), rec("2", 20));
        let els = batch_of(broken.as_bytes());
        assert_eq!(els.iter().map(|e| e.result.as_ref().map(|b| b.vehicle_id).map_err(|r| r.rule)).collect::<Vec<_>>()[..], [Ok(1), Err(rules::INVALID_JSON), Ok(2)]);
        assert!(els[1].result.as_ref().is_err_and(|r| r.message.starts_with("line 2 of 3: not JSON: ")), "{:?}", els[1]);
        assert_eq!(els[1].text, b"{\"EVENT_NO_TRIP\":9,");
        // A pretty-printed object cut short is one broken value, not a reject per line.
        match parse_records(Some(b"{\n  \"EVENT_NO_TRIP\": 9,\n  \"VEHICLE_ID\": 3\n")) {
            Message::One(Err(r)) => assert_eq!(r.rule, rules::INVALID_JSON),
            other => panic!("{other:?}"),
        }
        // Several CSV lines (a chunk of an export, header included): one record per line.
        let chunk = format!("EVENT_NO_TRIP,EVENT_NO_STOP,OPD_DATE,VEHICLE_ID,METERS,ACT_TIME,GPS_LONGITUDE,GPS_LATITUDE,GPS_SATELLITES,GPS_HDOP\r\n{csv}\r\n{}\r\n", csv.replace(",4223,", ",4224,"));
        let els = batch_of(chunk.as_bytes());
        assert_eq!(els[0].result.as_ref().unwrap_err().message, "line 1 of 3: a CSV header line");
        assert_eq!([1, 2].map(|i| els[i].result.as_ref().map(|b| (b.vehicle_id, b.encoding)).unwrap()), [(4223, "csv"), (4224, "csv")]);

        // `parse` is for one record: it names a batch instead of guessing which element is meant.
        assert_eq!(parse(arr.as_bytes()).unwrap_err().message, "a batch of 2 records in one message, expected one");
    }

    #[test]
    fn compressed_payloads_and_a_byte_order_mark_read_like_plain_text() {
        use std::io::Write;
        let json = br#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393162,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38670,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"GPS_SATELLITES":12.0,"GPS_HDOP":0.8}"#;
        let csv = b"80193116,218393162,12DEC2022:00:00:00,2901,38670,33160,-122.867367,45.527212,12,0.8\r\n";
        let gzip = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let zlib = |b: &[u8]| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let plain = parse(json).unwrap();
        let plain_csv = parse(csv).unwrap();
        // A CSV line starting "80" looks like a zlib header to the first two bytes; it is still text.
        assert_eq!((plain_csv.encoding, plain_csv.trip_id), ("csv", 80193116));
        for (payload, want, encoding) in [
            (gzip(json), &plain, "json+compressed"),
            (zlib(json), &plain, "json+compressed"),
            (gzip(csv), &plain_csv, "csv+compressed"),
            (zlib(&[b"\xef\xbb\xbf", &json[..]].concat()), &plain, "json+compressed"),
            ([b"\xef\xbb\xbf", &json[..]].concat(), &plain, "json"),
            ([b"\xef\xbb\xbf", &csv[..]].concat(), &plain_csv, "csv"),
        ] {
            let got = parse(&payload).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(got.encoding, encoding);
            assert_eq!(Breadcrumb { encoding: "", ..got }, Breadcrumb { encoding: "", ..want.clone() });
        }
        // Broken gzip is named as such; compressed garbage is judged as what it inflates to.
        let mut cut = gzip(json);
        cut.truncate(cut.len() / 2);
        let e = parse(&cut).unwrap_err();
        assert!(e.rule == rules::INVALID_JSON && e.message.contains("gzip"), "{e:?}");
        assert_eq!(parse(&gzip(b"hello")).unwrap_err().rule, rules::INVALID_JSON);
        assert_eq!(parse(&zlib(br#"{"a":1}"#)).unwrap_err().rule, rules::NOT_A_BREADCRUMB);
        // A bomb stops at the limit.
        let e = parse(&gzip(&vec![b' '; (MAX_INFLATED + 10) as usize])).unwrap_err();
        assert!(e.message.contains("more than"), "{e:?}");
    }

    #[test]
    fn utf16_payloads_read_like_their_utf8_text() {
        let json = r#"{"EVENT_NO_TRIP":218393116,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"NOTE":"Gare de l'Est — ok"}"#;
        let csv = "259173279,259173350,15FEB2023:00:00:00,4223,194493,71279,-122.679572,45.517122,8,1.6\r\n";
        let le = |t: &str| t.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        let be = |t: &str| t.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>();
        let (plain, plain_csv) = (parse(json.as_bytes()).unwrap(), parse(csv.as_bytes()).unwrap());
        for (payload, want) in [
            ([&[0xff, 0xfe][..], &le(json)].concat(), &plain),
            ([&[0xfe, 0xff][..], &be(json)].concat(), &plain),
            (le(json), &plain),
            (be(json), &plain),
            ([&[0xff, 0xfe][..], &le(csv)].concat(), &plain_csv),
            (le(csv), &plain_csv),
        ] {
            assert_eq!(&parse(&payload).unwrap_or_else(|e| panic!("{e:?}")), want);
        }
        // What does not decode is named; a lone mark is an empty message.
        let e = parse(&[&[0xff, 0xfe][..], &le(json)[..9]].concat()).unwrap_err();
        assert!(e.rule == rules::INVALID_JSON && e.message.contains("UTF-16") && e.message.contains("odd length"), "{e:?}");
        let e = parse(&[&le("{\"A\":")[..], &[0x00, 0xd8, b'1', 0x00][..]].concat()).unwrap_err();
        assert!(e.rule == rules::INVALID_JSON && e.message.contains("does not decode"), "{e:?}");
        assert_eq!(parse(&[0xff, 0xfe]).unwrap_err().rule, rules::EMPTY);
        // Text that merely contains a zero byte later on is not taken for UTF-16.
        assert_eq!(parse(b"{\"EVENT_NO_TRIP\":1\0}").unwrap_err().rule, rules::INVALID_JSON);
    }

    #[test]
    fn a_quoted_known_name_is_recognised_whole_and_only_whole() {
        for (k, name) in KNOWN.iter().enumerate() {
            let q = format!("\"{name}\":1");
            for (j, _) in KNOWN.iter().enumerate() {
                assert_eq!(flat::is_quoted(q.as_bytes(), 0, j), j == k, "{name} as {}", KNOWN[j]);
            }
            assert!(flat::is_quoted(format!("xx\"{name}\"").as_bytes(), 2, k));
            // Any byte changed, the name cut short or its closing quote missing: not the name.
            for at in 0..name.len() + 2 {
                let mut b = q.clone().into_bytes();
                b[at] ^= 0x20;
                assert!(!flat::is_quoted(&b, 0, k), "{name} with byte {at} changed");
            }
            assert!(!flat::is_quoted(format!("\"{name}").as_bytes(), 0, k));
            assert!(!flat::is_quoted(format!("\"{}\"", &name[..name.len() - 1]).as_bytes(), 0, k));
        }
        assert!(!flat::is_quoted(b"\"METERS\"", 0, 14));
        // The sorted order the fast path expects as its second guess.
        let mut sorted: Vec<usize> = (0..14).collect();
        sorted.sort_by_key(|&i| KNOWN[i]);
        assert_eq!(sorted[0], flat::SORTED_FIRST);
        for w in sorted.windows(2) {
            assert_eq!(flat::SORTED_NEXT[w[0]], w[1], "after {}", KNOWN[w[0]]);
        }
        assert_eq!(flat::SORTED_NEXT[sorted[13]], 14);
    }

    #[test]
    fn every_known_name_is_found_and_nothing_else() {
        for (i, k) in KNOWN.iter().enumerate() {
            assert_eq!(known_index(k), Some(i), "{k}");
            assert_eq!(known_index(&k.to_lowercase()), Some(i), "{k}");
            assert_eq!(known_index(&format!("{k}X")), None, "{k}");
            assert_eq!(known_index(&k[1..]), None, "{k}");
        }
        for other in ["", "ID", "ROUTE", "EVENT_NO_TRIX", "GPS_LATITUDF", "XPD_DATE"] {
            assert_eq!(known_index(other), None, "{other}");
        }
    }

    #[test]
    fn date_formats() {
        let want = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        for s in ["12DEC2022:00:00:00", "12-DEC-22", "12-Dec-2022", "2022-12-12", "2022-12-12T00:00:00", "12dec2022", "12/12/2022", "20221212", "2022-12-12 00:00:00"] {
            assert_eq!(parse_service_date(s), Some(want), "{s}");
        }
        assert_eq!(parse_service_date("13/13/13"), None);
        // The cached form answers like the parser whatever the order of strings it is given.
        let mixed = ["12DEC2022:00:00:00", "12DEC2022:00:00:00", "13/13/13", "", "13DEC2022:00:00:00", "12DEC2022:00:00:00", "14-SEP-20", "13/13/13", "13/13/13"];
        for s in mixed.iter().chain(mixed.iter().rev()) {
            assert_eq!(service_date_cached(s), parse_service_date(s), "{s:?}");
        }
    }
}
