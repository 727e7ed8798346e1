//! `etl produce`: test-data producer. Turns JSON-array, NDJSON and CSV files into one Kafka
//! message per record, keyed by vehicle id. Each record is sent as written in the file (fields in
//! their order, numbers as spelled; only whitespace outside strings is dropped), not re-serialized:
//! what lands in the raw layer is what a producer of those records would have sent. Parsing
//! ([`read_records`]) is pure; sending lives in [`crate::kafka`].

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Errors reading input files.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// File cannot be opened/read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// File content is not JSON array / NDJSON / CSV.
    #[error("{path}: {reason}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong, with line/record number.
        reason: String,
    },
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Message key (vehicle id), if the record has one.
    pub key: Option<Vec<u8>>,
    /// Message payload.
    pub payload: Vec<u8>,
}

/// Field names that hold the vehicle id in the feeds seen so far.
const VEHICLE_FIELDS: [&str; 3] = ["VEHICLE_ID", "vehicle_id", "vehicleId"];

fn vehicle_key(v: &Value) -> Option<Vec<u8>> {
    let obj = match v {
        Value::Object(o) => o,
        // Double-encoded record: look inside the string.
        Value::String(s) => return serde_json::from_str::<Value>(s).ok().filter(|v| v.is_object()).and_then(|v| vehicle_key(&v)),
        _ => return None,
    };
    let id = VEHICLE_FIELDS.iter().find_map(|f| obj.get(*f)).or_else(|| {
        obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("vehicle_id")).map(|(_, v)| v)
    })?;
    match id {
        Value::String(s) if !s.is_empty() => Some(s.as_bytes().to_vec()),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// The message for one record: `text` is its JSON as written in the file, `v` the same parsed.
/// The payload is that text, without whitespace outside strings (fields keep their order and
/// numbers their spelling: what a producer of the file's records would have sent); a record
/// that is a JSON string is sent as the string's contents.
fn record_of(v: Value, text: &str) -> Record {
    let key = vehicle_key(&v);
    let payload = match v {
        Value::String(s) => s.into_bytes(),
        _ => compact(text),
    };
    Record { key, payload }
}

/// `text` (valid JSON) without the whitespace between tokens.
fn compact(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &c in text.as_bytes() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = c == b'"';
            out.push(c);
        }
    }
    out
}

/// Reads one input file into records. Format: `.csv` → CSV with a header row; otherwise a
/// JSON array if the first non-blank byte is `[`, else NDJSON (blank lines skipped).
pub fn read_records(path: &Path) -> Result<Vec<Record>, ProduceError> {
    let bytes = std::fs::read(path).map_err(|source| ProduceError::Read { path: path.into(), source })?;
    parse_records(path, &bytes)
}

/// Parses the bytes of an input file (see [`read_records`]).
pub fn parse_records(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, ProduceError> {
    let perr = |reason: String| ProduceError::Parse { path: path.into(), reason };
    let is_csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut rdr = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::Headers).from_reader(bytes);
        let headers = rdr.headers().map_err(|e| perr(format!("bad CSV header: {e}")))?.clone();
        if headers.is_empty() {
            return Err(perr("CSV file has no header row".into()));
        }
        let mut out = Vec::new();
        for (i, row) in rdr.records().enumerate() {
            let row = row.map_err(|e| perr(format!("CSV record {}: {e}", i + 1)))?;
            // An object of strings in the header's order.
            let fields: Vec<String> = headers.iter().zip(row.iter()).map(|(h, v)| format!("{}:{}", Value::from(h), Value::from(v))).collect();
            let text = format!("{{{}}}", fields.join(","));
            let obj: serde_json::Map<String, Value> =
                headers.iter().zip(row.iter()).map(|(h, v)| (h.to_string(), Value::String(v.to_string()))).collect();
            out.push(record_of(Value::Object(obj), &text));
        }
        return Ok(out);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| perr(format!("not UTF-8 text: {e}")))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if trimmed.starts_with('[') {
        let values: Vec<Value> = serde_json::from_str(trimmed).map_err(|e| perr(format!("not a JSON array: {e}")))?;
        // Each element's text as written (serde_json has just read the array whole).
        let spans = crate::breadcrumb::array_spans(trimmed).map_err(|why| perr(format!("not a JSON array: a JSON array {why}")))?;
        return Ok(values.into_iter().zip(spans).map(|(v, span)| record_of(v, &trimmed[span])).collect());
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| perr(format!("line {}: not JSON ({e}); expected a JSON array, NDJSON or a .csv file", i + 1)))?;
        out.push(record_of(v, line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_array_objects_and_strings() {
        let src = br#"[{"VEHICLE_ID": 4223, "ACT_TIME": 1}, "{\"VEHICLE_ID\":\"99\"}", 5]"#;
        let r = parse_records(Path::new("x.json"), src).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].key.as_deref(), Some(&b"4223"[..]));
        // Fields in the file's order, numbers as spelled, no whitespace outside strings.
        assert_eq!(r[0].payload, br#"{"VEHICLE_ID":4223,"ACT_TIME":1}"#.to_vec());
        // A string element is sent as its contents, keyed from inside.
        assert_eq!(r[1].payload, br#"{"VEHICLE_ID":"99"}"#.to_vec());
        assert_eq!(r[1].key.as_deref(), Some(&b"99"[..]));
        assert_eq!(r[2].key, None);
    }

    #[test]
    fn ndjson_and_csv() {
        let r = parse_records(Path::new("x.ndjson"), b"{\"vehicle_id\":1}\n\n{\"vehicle_id\":2}\n").unwrap();
        assert_eq!(r.len(), 2);
        let r = parse_records(Path::new("x.csv"), b"EVENT_NO_TRIP,VEHICLE_ID,GPS_HDOP\n1,4223,0.7\n2,4223,\n").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].payload, br#"{"EVENT_NO_TRIP":"2","VEHICLE_ID":"4223","GPS_HDOP":""}"#.to_vec());
        assert_eq!(r[0].key.as_deref(), Some(&b"4223"[..]));
    }

    #[test]
    fn payloads_are_the_records_as_written() {
        let line = r#"{"VEHICLE_ID":4223, "GPS_HDOP":0.80,"OPD_DATE":"12DEC2022:00:00:00","X":"a \" b  c","N":12345678901234567890123}"#;
        let r = parse_records(Path::new("x.ndjson"), format!("{line}\n\n  {line}  \r\n").as_bytes()).unwrap();
        let compacted = line.replace(", ", ",");
        assert_eq!(r.len(), 2);
        for rec in &r {
            assert_eq!(String::from_utf8_lossy(&rec.payload), compacted);
            assert_eq!(rec.key.as_deref(), Some(&b"4223"[..]));
        }
        // A pretty-printed array: each element compacted, its order and spelling kept.
        let pretty = format!("[\n  {},\n  {}\n]\n", line.replace(",", ",\n    "), line);
        let r = parse_records(Path::new("x.json"), pretty.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        for rec in &r {
            assert_eq!(String::from_utf8_lossy(&rec.payload), compacted);
        }
        // What the breadcrumb parser reads from them is what it reads from the line itself.
        assert_eq!(crate::breadcrumb::parse(&r[0].payload), crate::breadcrumb::parse(line.as_bytes()));
        for bad in ["[1,]", "[1 2]", "[1] x", "[", "[1,,2]"] {
            let e = parse_records(Path::new("x.json"), bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("x.json") && e.contains("not a JSON array"), "{bad}: {e}");
        }
        assert!(parse_records(Path::new("x.json"), b" [ ] ").unwrap().is_empty());
    }

    #[test]
    fn csv_with_bom_and_spaced_headers() {
        let r = parse_records(Path::new("x.csv"), b"\xef\xbb\xbfEVENT_NO_TRIP, VEHICLE_ID\r\n1,4223\r\n").unwrap();
        assert_eq!(r[0].payload, br#"{"EVENT_NO_TRIP":"1","VEHICLE_ID":"4223"}"#.to_vec());
        assert_eq!(r[0].key.as_deref(), Some(&b"4223"[..]));
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let e = parse_records(Path::new("bad.json"), b"{\"a\":1}\n{oops\n").unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("line 2"), "{e}");
        let e = parse_records(Path::new("bad.csv"), b"a,b\n1,2,3\n").unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("record 1"), "{e}");
        let e = read_records(Path::new("/nonexistent/file.json")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/file.json"), "{e}");
    }
}
