//! The raw plaintext format, `etl-frames/1`: every Kafka message kept byte for byte.
//!
//! ```text
//! {"partition":0,"offset":41,"timestamp":1670832000000,"key":"4223","len":312}\n
//! <312 payload bytes, verbatim>\n
//! ```
//!
//! A JSON header line per message (key as `key` when it is UTF-8, else `key_b64`; `timestamp`
//! in milliseconds or null), then exactly `len` payload bytes and a newline. Payloads are never
//! re-encoded, so binary, invalid JSON and embedded newlines survive untouched; `etl cat` turns
//! frames into NDJSON for people.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Content tag of this format, recorded in the envelope header.
pub const CONTENT: &str = "etl-frames/1";

/// One Kafka message as stored in the raw layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Message timestamp (ms since the epoch), if the broker gave one.
    pub timestamp: Option<i64>,
    /// Message key bytes.
    pub key: Option<&'a [u8]>,
    /// Message payload bytes (verbatim).
    pub payload: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct FrameHeader<'a> {
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", borrow)]
    key: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_b64: Option<String>,
    len: usize,
}

/// Errors decoding frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A frame header or body does not match the format.
    #[error("corrupt frame at plaintext byte {at}: {reason}")]
    Corrupt {
        /// Byte position in the plaintext.
        at: usize,
        /// What was wrong.
        reason: String,
    },
}

/// Appends one frame to `out`.
pub fn encode(out: &mut Vec<u8>, f: &Frame<'_>) {
    let (key, key_b64) = match f.key {
        None => (None, None),
        Some(k) => match std::str::from_utf8(k) {
            Ok(s) => (Some(std::borrow::Cow::Borrowed(s)), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(k))),
        },
    };
    let h = FrameHeader { partition: f.partition, offset: f.offset, timestamp: f.timestamp, key, key_b64, len: f.payload.len() };
    // Serializing a plain struct into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &h);
    out.push(b'\n');
    out.extend_from_slice(f.payload);
    out.push(b'\n');
}

/// Owned key bytes of a decoded frame (base64 keys are decoded into here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Timestamp in ms.
    pub timestamp: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Byte range of the payload within the plaintext buffer.
    pub payload: std::ops::Range<usize>,
}

/// Iterates over the frames of a plaintext buffer.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Decodes frames from a plaintext buffer.
pub fn decode(buf: &[u8]) -> Frames<'_> {
    Frames { buf, pos: 0 }
}

impl Iterator for Frames<'_> {
    type Item = Result<OwnedFrame, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let rest = &self.buf[at..];
        let corrupt = |reason: String| {
            Some(Err(FrameError::Corrupt { at, reason }))
        };
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            self.pos = self.buf.len();
            return corrupt("header line without newline".into());
        };
        let h: FrameHeader<'_> = match serde_json::from_slice(&rest[..nl]) {
            Ok(h) => h,
            Err(e) => {
                self.pos = self.buf.len();
                return corrupt(format!("bad header: {e}"));
            }
        };
        let start = at + nl + 1;
        let end = start.saturating_add(h.len);
        if self.buf.get(end) != Some(&b'\n') {
            self.pos = self.buf.len();
            return corrupt(format!("payload of {} bytes overruns the buffer", h.len));
        }
        self.pos = end + 1;
        let key = match (h.key, h.key_b64) {
            (Some(k), _) => Some(k.as_bytes().to_vec()),
            (None, Some(b)) => match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(k) => Some(k),
                Err(e) => return corrupt(format!("bad key_b64: {e}")),
            },
            (None, None) => None,
        };
        Some(Ok(OwnedFrame { partition: h.partition, offset: h.offset, timestamp: h.timestamp, key, payload: start..end }))
    }
}

/// One message as NDJSON for people and replay tools: `value` is the payload as a string when it
/// is UTF-8, otherwise `value_b64`.
pub fn to_ndjson(out: &mut Vec<u8>, f: &OwnedFrame, payload: &[u8], raw_key: &str) {
    let mut m = serde_json::Map::new();
    m.insert("object".into(), raw_key.into());
    m.insert("partition".into(), f.partition.into());
    m.insert("offset".into(), f.offset.into());
    m.insert("timestamp".into(), f.timestamp.map_or(serde_json::Value::Null, Into::into));
    let b64 = base64::engine::general_purpose::STANDARD;
    match f.key.as_deref().map(std::str::from_utf8) {
        None => {
            m.insert("key".into(), serde_json::Value::Null);
        }
        Some(Ok(s)) => {
            m.insert("key".into(), s.into());
        }
        Some(Err(_)) => {
            m.insert("key_b64".into(), b64.encode(f.key.as_deref().unwrap_or_default()).into());
        }
    }
    match std::str::from_utf8(payload) {
        Ok(s) => m.insert("value".into(), s.into()),
        Err(_) => m.insert("value_b64".into(), b64.encode(payload).into()),
    };
    let _ = serde_json::to_writer(&mut *out, &m);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_every_byte() {
        let payloads: Vec<&[u8]> = vec![b"{\"a\":1}", b"", b"line1\nline2\n", &[0xff, 0x00, 0x9f, b'\n'], b"\"double\""];
        let mut buf = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let key: Option<&[u8]> = match i % 3 {
                0 => Some(b"4223"),
                1 => None,
                _ => Some(&[0xfe, 0x01]),
            };
            encode(&mut buf, &Frame { partition: 2, offset: 100 + i as i64, timestamp: (i % 2 == 0).then_some(1_670_000_000_000), key, payload: p });
        }
        let frames: Vec<OwnedFrame> = decode(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), payloads.len());
        for (i, (f, p)) in frames.iter().zip(&payloads).enumerate() {
            assert_eq!(&buf[f.payload.clone()], *p);
            assert_eq!(f.offset, 100 + i as i64);
            assert_eq!(f.partition, 2);
        }
        assert_eq!(frames[2].key, Some(vec![0xfe, 0x01]));
        assert_eq!(frames[1].key, None);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(&mut buf, &Frame { partition: 0, offset: 1, timestamp: None, key: None, payload: b"abc" });
        for cut in 0..buf.len() {
            let r: Result<Vec<_>, _> = decode(&buf[..cut]).collect();
            assert!(cut == 0 || r.is_err(), "cut {cut}");
        }
        assert!(decode(b"not a header\nxx").collect::<Result<Vec<_>, _>>().is_err());
    }
}
