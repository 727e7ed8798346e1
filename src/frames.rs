//! The raw plaintext format, `etl-frames/3`: every Kafka message kept byte for byte.
//!
//! ```text
//! 41 1670832000000 4 312\n          offset, timestamp (ms, or -), key length (or - for no key),
//!                                   payload length (or - for a null payload: a tombstone)
//! 4223{"EVENT_NO_TRIP":...}\n       the key bytes, then the payload bytes, verbatim, then a newline
//! ```
//!
//! `etl-frames/2` (written before tombstones were told apart from empty payloads) is the same
//! format without `-` as a payload length; both are read.
//!
//! The partition is the object's (it is in the object key), so it is not repeated per message;
//! the header line is ~25 bytes, so the compressor spends its time on the payloads. Payloads and
//! keys are never re-encoded: binary, invalid JSON and embedded newlines survive untouched.
//! `etl cat` turns frames into NDJSON for people.

use base64::Engine as _;

/// Content tag of this format, recorded in the envelope header.
pub const CONTENT: &str = "etl-frames/3";

/// Content tags this version reads: the current one and `etl-frames/2`, its subset.
pub const READS: [&str; 2] = ["etl-frames/2", CONTENT];

/// One Kafka message as stored in the raw layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Kafka partition (implied by the object; not written per frame).
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Message timestamp (ms since the epoch), if the broker gave one.
    pub timestamp: Option<i64>,
    /// Message key bytes.
    pub key: Option<&'a [u8]>,
    /// Message payload bytes (verbatim); `None` for a null payload (a tombstone).
    pub payload: Option<&'a [u8]>,
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
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(num.format(f.offset).as_bytes());
    out.push(b' ');
    match f.timestamp {
        Some(t) => out.extend_from_slice(num.format(t).as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b' ');
    match f.key {
        Some(k) => out.extend_from_slice(num.format(k.len()).as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b' ');
    match f.payload {
        Some(p) => out.extend_from_slice(num.format(p.len()).as_bytes()),
        None => out.push(b'-'),
    }
    out.push(b'\n');
    if let Some(k) = f.key {
        out.extend_from_slice(k);
    }
    out.extend_from_slice(f.payload.unwrap_or_default());
    out.push(b'\n');
}

/// A decoded frame: positions into the plaintext buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Timestamp in ms.
    pub timestamp: Option<i64>,
    /// Byte range of the key within the plaintext buffer, if there is a key.
    pub key: Option<std::ops::Range<usize>>,
    /// Byte range of the payload within the plaintext buffer; `None` for a null payload.
    pub payload: Option<std::ops::Range<usize>>,
}

impl OwnedFrame {
    /// The payload's bytes in `plaintext` (`None` for a null payload).
    pub fn payload_in<'a>(&self, plaintext: &'a [u8]) -> Option<&'a [u8]> {
        self.payload.clone().map(|r| &plaintext[r])
    }
}

/// A header line: offset, timestamp, key length, payload length (`None`: `-`).
type Header = (i64, Option<i64>, Option<usize>, Option<usize>);

/// Iterates over the frames of a plaintext buffer.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    partition: i32,
}

/// Decodes the frames of an object of `partition`.
pub fn decode(buf: &[u8], partition: i32) -> Frames<'_> {
    Frames { buf, pos: 0, partition }
}

/// A decimal integer (`-?[0-9]+`), read straight from the bytes.
fn integer(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

fn field<T: TryFrom<i64>>(f: Option<&[u8]>) -> Result<Option<T>, String> {
    match f {
        None => Err("header line has too few fields".into()),
        Some(b"-") => Ok(None),
        Some(b) => integer(b).and_then(|v| T::try_from(v).ok()).map(Some).ok_or_else(|| format!("bad number {:?}", String::from_utf8_lossy(b))),
    }
}

/// A header line `offset ts klen len\n` read in one pass, with where its newline is; `None`
/// for anything that is not plainly well formed (then [`header_careful`] says what is wrong, or
/// reads it).
fn header_fast(b: &[u8]) -> Option<(Header, usize)> {
    let mut v: [Option<i64>; 4] = [None; 4];
    let mut i = 0;
    for (k, slot) in v.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b' ') {
                return None;
            }
            i += 1;
        }
        let neg = b.get(i) == Some(&b'-');
        if neg && matches!(b.get(i + 1), Some(b' ' | b'\n')) {
            i += 1;
            continue;
        }
        i += usize::from(neg);
        let (start, mut n) = (i, 0i64);
        while let Some(c @ b'0'..=b'9') = b.get(i) {
            n = n.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            i += 1;
        }
        if i == start {
            return None;
        }
        *slot = Some(if neg { -n } else { n });
    }
    if b.get(i) != Some(&b'\n') {
        return None;
    }
    let len = |x: Option<i64>| x.map(usize::try_from).transpose().ok();
    Some(((v[0]?, v[1], len(v[2])?, len(v[3])?), i))
}

/// A header line (without its newline) field by field, naming what is wrong.
fn header_careful(line: &[u8]) -> Result<Header, String> {
    let mut parts = line.split(|&b| b == b' ');
    let offset = field::<i64>(parts.next())?.ok_or("offset missing")?;
    let ts = field::<i64>(parts.next())?;
    let klen = field::<usize>(parts.next())?;
    let len = field::<usize>(parts.next())?;
    if parts.next().is_some() {
        return Err("header line has too many fields".into());
    }
    Ok((offset, ts, klen, len))
}

impl Iterator for Frames<'_> {
    type Item = Result<OwnedFrame, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let mut fail = |reason: String| {
            self.pos = self.buf.len();
            Some(Err(FrameError::Corrupt { at, reason }))
        };
        let rest = &self.buf[at..];
        // One pass over a well-formed header; anything else goes through the careful path below,
        // which names the problem.
        let (nl, parsed) = match header_fast(rest) {
            Some((h, nl)) => (nl, Ok(h)),
            None => {
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else { return fail("header line without newline".into()) };
                (nl, header_careful(&rest[..nl]))
            }
        };
        let (offset, timestamp, klen, len) = match parsed {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        let kstart = at + nl + 1;
        let pstart = kstart.saturating_add(klen.unwrap_or(0));
        let end = pstart.saturating_add(len.unwrap_or(0));
        if self.buf.get(end) != Some(&b'\n') {
            return fail(format!("key of {} and payload of {} bytes overrun the buffer", klen.unwrap_or(0), len.unwrap_or(0)));
        }
        self.pos = end + 1;
        Some(Ok(OwnedFrame { partition: self.partition, offset, timestamp, key: klen.map(|_| kstart..pstart), payload: len.map(|_| pstart..end) }))
    }
}

/// One message as NDJSON for people and replay tools: `value` is the payload as a string when it
/// is UTF-8 (null for a null payload), otherwise `value_b64`.
pub fn to_ndjson(out: &mut Vec<u8>, f: &OwnedFrame, plaintext: &[u8], raw_key: &str) {
    let payload = f.payload_in(plaintext);
    let key = f.key.clone().map(|r| &plaintext[r]);
    let mut m = serde_json::Map::new();
    m.insert("object".into(), raw_key.into());
    m.insert("partition".into(), f.partition.into());
    m.insert("offset".into(), f.offset.into());
    m.insert("timestamp".into(), f.timestamp.map_or(serde_json::Value::Null, Into::into));
    let b64 = base64::engine::general_purpose::STANDARD;
    match key.map(std::str::from_utf8) {
        None => {
            m.insert("key".into(), serde_json::Value::Null);
        }
        Some(Ok(s)) => {
            m.insert("key".into(), s.into());
        }
        Some(Err(_)) => {
            m.insert("key_b64".into(), b64.encode(key.unwrap_or_default()).into());
        }
    }
    match payload.map(|p| (p, std::str::from_utf8(p))) {
        None => m.insert("value".into(), serde_json::Value::Null),
        Some((_, Ok(s))) => m.insert("value".into(), s.into()),
        Some((p, Err(_))) => m.insert("value_b64".into(), b64.encode(p).into()),
    };
    let _ = serde_json::to_writer(&mut *out, &m);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_keeps_every_byte() {
        let payloads: Vec<Option<&[u8]>> = vec![Some(b"{\"a\":1}"), Some(b""), Some(b"line1\nline2\n"), None, Some(&[0xff, 0x00, 0x9f, b'\n']), Some(b"\"double\"")];
        let mut buf = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let key: Option<&[u8]> = match i % 3 {
                0 => Some(b"4223"),
                1 => None,
                _ => Some(&[0xfe, b'\n', 0x01]),
            };
            encode(&mut buf, &Frame { partition: 2, offset: 100 + i as i64, timestamp: (i % 2 == 0).then_some(1_670_000_000_000), key, payload: *p });
        }
        let frames: Vec<OwnedFrame> = decode(&buf, 2).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames.len(), payloads.len());
        for (i, (f, p)) in frames.iter().zip(&payloads).enumerate() {
            assert_eq!(f.payload_in(&buf), *p, "frame {i}");
            assert_eq!(f.offset, 100 + i as i64);
            assert_eq!(f.partition, 2);
            assert_eq!(f.timestamp.is_some(), i % 2 == 0);
        }
        assert_eq!(&buf[frames[2].key.clone().unwrap()], &[0xfe, b'\n', 0x01]);
        assert_eq!(frames[1].key, None);
        // The header stays small: the compressor's time goes to payloads.
        let mut one = Vec::new();
        encode(&mut one, &Frame { partition: 0, offset: 12_345_678, timestamp: Some(1_795_416_597_147), key: Some(b"4223"), payload: Some(b"x") });
        assert!(one.len() < 40, "{}", String::from_utf8_lossy(&one));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(&mut buf, &Frame { partition: 0, offset: 1, timestamp: None, key: Some(b"k"), payload: Some(b"abc") });
        for cut in 0..buf.len() {
            let r: Result<Vec<_>, _> = decode(&buf[..cut], 0).collect();
            assert!(cut == 0 || r.is_err(), "cut {cut}");
        }
        for bad in [&b"not a header\nxx"[..], b"1 2 3\n", b"1 2 3 4 5\nx", b"1 - - 99999999999999999999\n"] {
            assert!(decode(bad, 0).collect::<Result<Vec<_>, _>>().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_one_pass_header_reads_what_the_careful_one_reads() {
        let lines = [
            "41 1670832000000 4 312", "0 - - -", "7 -5 0 0", "-3 1 2 3", "9223372036854775807 1 2 3", "9223372036854775808 1 2 3", "1 2 -4 5", "- 1 2 3",
            "1 2 3", "1 2 3 4 5", "1  2 3 4", "1 2 3 4 ", " 1 2 3 4", "+1 2 3 4", "1 2 3 x", "1 2 3 4x", "1 -- 3 4", "007 08 0 1", "",
        ];
        for l in lines {
            let careful = header_careful(l.as_bytes()).ok();
            let fast = header_fast(format!("{l}\nrest").as_bytes());
            assert_eq!(fast.map(|(h, _)| h), fast.and(careful), "{l:?}: the fast path may decline, never differ");
            if let Some((_, nl)) = fast {
                assert_eq!(nl, l.len(), "{l:?}");
            }
        }
        // It takes what etl writes.
        let mut buf = Vec::new();
        encode(&mut buf, &Frame { partition: 0, offset: 12, timestamp: Some(1_700_000_000_000), key: None, payload: Some(b"{}") });
        assert_eq!(header_fast(&buf).map(|(h, _)| h), Some((12, Some(1_700_000_000_000), None, Some(2))));
    }
}
