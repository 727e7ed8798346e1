//! Breadcrumb parsing and validation: one raw Kafka payload → a typed row or a named reject.
//! Pure functions only; every rule and threshold lives in [`rules`].
//!
//! Accepted encodings (each noted in the row's `encoding` column):
//! - numbers as JSON numbers or as strings (`"1776"`, `"0.7"`); `""` and `null` mean missing;
//! - a record that is itself a JSON string containing the object (`double_encoded`);
//! - the 10-field record and the older 14-field one (VELOCITY, DIRECTION, RADIO_QUALITY,
//!   SCHEDULE_DEVIATION); field names case-insensitive; unknown fields kept in `extra` (JSON);
//! - OPD_DATE as `12DEC2022:00:00:00`, `14-SEP-20`, `14-SEP-2020`, `2022-12-12` (+ time);
//! - ACT_TIME in seconds after midnight of the service day, possibly ≥ 86400 after midnight.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::America::Los_Angeles;
use serde_json::{Map, Value};

/// Validation rules and thresholds, in one place.
pub mod rules {
    /// Hard rule: the message is empty.
    pub const EMPTY: &str = "empty_message";
    /// Hard rule: not JSON (or not UTF-8).
    pub const INVALID_JSON: &str = "invalid_json";
    /// Hard rule: JSON, but not a breadcrumb object (array, scalar, other schema).
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
    /// How the record was encoded (`json`, `json+string_numbers`, `double_encoded`, ...).
    pub encoding: String,
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

/// A numeric field's value after normalisation.
enum Num {
    Missing,
    Value(f64, bool),
    Bad(String),
}

fn num(v: Option<&Value>) -> Num {
    match v {
        None | Some(Value::Null) => Num::Missing,
        Some(Value::Number(n)) => n.as_f64().map_or(Num::Bad(n.to_string()), |f| Num::Value(f, false)),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("null") || t.eq_ignore_ascii_case("nan") {
                Num::Missing
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() => Num::Value(f, true),
                    _ => Num::Bad(s.clone()),
                }
            }
        }
        Some(other) => Num::Bad(other.to_string()),
    }
}

/// Parses OPD_DATE in the formats seen in the wild.
pub fn parse_service_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let date_part = t.split([':', ' ', 'T']).next().unwrap_or(t);
    for fmt in ["%d%b%Y", "%d-%b-%y", "%d-%b-%Y", "%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(date_part, fmt) {
            return Some(d);
        }
    }
    None
}

/// The UTC instant (µs) of `act_time` seconds after midnight of `service_date`, read as a
/// wall-clock time in America/Los_Angeles. Beyond 86400 it rolls into the next day(s). A time
/// that does not exist (spring-forward gap) uses the offset before the change; an ambiguous one
/// (fall-back) takes the first occurrence (PDT).
pub fn event_time_us(service_date: NaiveDate, act_time: i64) -> Option<i64> {
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

/// Parses one message payload into a breadcrumb or a reject.
pub fn parse(payload: &[u8]) -> Result<Breadcrumb, Reject> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(reject(rules::EMPTY, "message is empty"));
    }
    let text = std::str::from_utf8(payload).map_err(|e| reject(rules::INVALID_JSON, format!("not UTF-8 text: {e}")))?;
    let mut value: Value = serde_json::from_str(text).map_err(|e| reject(rules::INVALID_JSON, format!("not JSON: {e}")))?;
    let mut notes: Vec<&'static str> = Vec::new();
    // Double (or more) encoded: a JSON string holding the JSON object.
    let mut depth = 0;
    while let Value::String(s) = &value {
        depth += 1;
        if depth > 3 {
            break;
        }
        value = serde_json::from_str(s).map_err(|e| reject(rules::INVALID_JSON, format!("a JSON string that is not JSON inside: {e}")))?;
        notes.push("double_encoded");
    }
    let obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => return Err(reject(rules::NOT_A_BREADCRUMB, "a JSON array, expected one breadcrumb object")),
        other => return Err(reject(rules::NOT_A_BREADCRUMB, format!("a JSON {}, expected a breadcrumb object", kind(&other)))),
    };
    from_object(obj, notes)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn from_object(obj: Map<String, Value>, mut notes: Vec<&'static str>) -> Result<Breadcrumb, Reject> {
    // Split known fields (case-insensitive) from the rest.
    let mut known: [Option<Value>; 14] = Default::default();
    let mut extra = Map::new();
    for (k, v) in obj {
        match KNOWN.iter().position(|n| n.eq_ignore_ascii_case(&k)) {
            Some(i) if known[i].is_none() => known[i] = Some(v),
            _ => {
                extra.insert(k, v);
            }
        }
    }
    if known.iter().all(Option::is_none) {
        let fields: Vec<&str> = extra.keys().map(String::as_str).take(6).collect();
        return Err(reject(rules::NOT_A_BREADCRUMB, format!("no breadcrumb fields (has: {})", fields.join(", "))));
    }
    let field = |i: usize| known[i].as_ref();
    let mut strings = false;
    let mut flags: Vec<&'static str> = Vec::new();
    let mut int_key = |i: usize, missing: &'static str| -> Result<i64, Reject> {
        match num(field(i)) {
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
    let service_date = match field(2) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            parse_service_date(s).ok_or_else(|| reject(rules::BAD_DATE, format!("OPD_DATE {s:?} is in no known format")))?
        }
        Some(Value::Null) | None => return Err(reject(rules::BAD_DATE, "OPD_DATE is missing")),
        Some(Value::String(_)) => return Err(reject(rules::BAD_DATE, "OPD_DATE is empty")),
        Some(other) => return Err(reject(rules::BAD_DATE, format!("OPD_DATE {other} is not a date string"))),
    };
    let act_time = match num(field(5)) {
        Num::Missing => return Err(reject(rules::BAD_TIME, "ACT_TIME is missing")),
        Num::Bad(s) => return Err(reject(rules::BAD_TIME, format!("ACT_TIME {s:?} is not a number"))),
        Num::Value(f, s) => {
            strings |= s;
            let t = f.round() as i64;
            if !(0..=rules::MAX_ACT_TIME).contains(&t) {
                return Err(reject(rules::BAD_TIME, format!("ACT_TIME {t} is outside 0..={}", rules::MAX_ACT_TIME)));
            }
            t
        }
    };
    let event_time_us = event_time_us(service_date, act_time).ok_or_else(|| reject(rules::BAD_TIME, "ACT_TIME gives no valid instant"))?;
    let mut opt = |i: usize| -> Option<f64> {
        match num(field(i)) {
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
    let stop_event_id = opt(1).map(|f| f.round() as i64);
    let meters = opt(4).map(|f| f.round() as i64);
    let longitude = opt(6);
    let latitude = opt(7);
    let satellites = opt(8).map(|f| f.round() as i32);
    let hdop = opt(9);
    let velocity = opt(10);
    let direction = opt(11);
    let radio_quality = opt(12);
    let schedule_deviation = opt(13).map(|f| f.round() as i64);
    if strings {
        notes.push("string_numbers");
    }
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
    let n_known = known.iter().filter(|v| v.is_some()).count();
    let mut encoding = String::from("json");
    if n_known > 10 {
        encoding.push_str("+14_field");
    }
    for n in notes {
        encoding.push('+');
        encoding.push_str(n);
    }
    if !extra.is_empty() {
        encoding.push_str("+extra_fields");
    }
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
        extra: if extra.is_empty() { None } else { Some(Value::Object(extra).to_string()) },
        encoding,
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
    fn numbers_as_numbers_and_as_strings_give_the_same_row() {
        let a = parse(br#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393162,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38670,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"GPS_SATELLITES":12.0,"GPS_HDOP":0.8}"#).unwrap();
        let b = parse(br#"{"EVENT_NO_TRIP":"218393116","EVENT_NO_STOP":"218393162","OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":"2901","METERS":"38670","ACT_TIME":"33160","GPS_LONGITUDE":"-122.867367","GPS_LATITUDE":"45.527212","GPS_SATELLITES":"12","GPS_HDOP":"0.8"}"#).unwrap();
        assert_eq!(a.encoding, "json");
        assert_eq!(b.encoding, "json+string_numbers");
        assert_eq!(Breadcrumb { encoding: String::new(), ..a.clone() }, Breadcrumb { encoding: String::new(), ..b });
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
    fn date_formats() {
        let want = NaiveDate::from_ymd_opt(2022, 12, 12).unwrap();
        for s in ["12DEC2022:00:00:00", "12-DEC-22", "12-Dec-2022", "2022-12-12", "2022-12-12T00:00:00", "12dec2022"] {
            assert_eq!(parse_service_date(s), Some(want), "{s}");
        }
        assert_eq!(parse_service_date("13/13/13"), None);
    }
}
