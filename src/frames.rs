//! The raw plaintext format, `etl-frames/4`: every Kafka message kept byte for byte.
//!
//! ```text
//! 41 1670832000000 4 312\n          first frame: offset, timestamp (ms, or -), key length (or -
//!                                   for no key), payload length (or - for a null payload: a tombstone)
//! 4223{"EVENT_NO_TRIP":...}\n       the key bytes, then the payload bytes, verbatim, then a newline
//! 1 0 4 310\n                       every later frame: offset and timestamp as differences from
//! 4223{"EVENT_NO_TRIP":...}\n       the previous frame's (the timestamp's from the last frame that had one)
//! ```
//!
//! `etl-frames/3` is the same with every offset and timestamp written whole; `etl-frames/2`
//! (written before tombstones were told apart from empty payloads) is `/3` without `-` as a
//! payload length. All three are read ([`Layout`]).
//!
//! The partition is the object's (it is in the object key), so it is not repeated per message.
//! Written whole, a header line was ~28 bytes of mostly changing digits: 12% more bytes to
//! compress than the messages. As differences it is ~10 bytes that repeat (`1 0 4 236`): on 5M
//! breadcrumbs, plaintext 1,331 → 1,247 MB and raw objects 100.8 → 86.0 MB (−14.7%).
//! Payloads and keys are never re-encoded: binary, invalid JSON and embedded newlines survive
//! untouched. `etl cat` turns frames into NDJSON for people.

use base64::Engine as _;

/// Content tag of this format, recorded in the envelope header.
pub const CONTENT: &str = "etl-frames/4";

/// Content tags this version reads: the current one and the two before it.
pub const READS: [&str; 3] = ["etl-frames/2", "etl-frames/3", CONTENT];

/// How a header line's offset and timestamp are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Whole numbers (`etl-frames/2` and `/3`).
    Whole,
    /// Differences from the previous frame's (`etl-frames/4`).
    Delta,
}

impl Layout {
    /// The layout of a content tag this version reads ([`READS`]).
    pub fn of(content: &str) -> Option<Layout> {
        match content {
            "etl-frames/2" | "etl-frames/3" => Some(Layout::Whole),
            CONTENT => Some(Layout::Delta),
            _ => None,
        }
    }

    /// The content tag a [`Encoder`] of this layout writes.
    pub fn content(self) -> &'static str {
        match self {
            Layout::Whole => "etl-frames/3",
            Layout::Delta => CONTENT,
        }
    }
}

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

/// Writes the frames of one object, in order ([`Layout::Delta`] unless asked for the old one).
#[derive(Debug, Clone)]
pub struct Encoder {
    layout: Layout,
    prev: Prev,
}

/// What delta header fields are taken from: the previous frame's offset and the last timestamp
/// seen (both 0 before the first frame, which so is written whole).
#[derive(Debug, Clone, Copy, Default)]
struct Prev {
    offset: i64,
    timestamp: i64,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(Layout::Delta)
    }
}

impl Encoder {
    /// An encoder for a new object.
    pub fn new(layout: Layout) -> Self {
        Self { layout, prev: Prev::default() }
    }

    /// The content tag of what it writes, for the envelope header.
    pub fn content(&self) -> &'static str {
        self.layout.content()
    }

    /// Appends one frame to `out` (the object's plaintext).
    pub fn encode(&mut self, out: &mut Vec<u8>, f: &Frame<'_>) {
        let (offset, timestamp) = match self.layout {
            Layout::Whole => (f.offset, f.timestamp),
            // Wrapping both ways: any i64 round-trips, however far apart.
            Layout::Delta => {
                let d = (f.offset.wrapping_sub(self.prev.offset), f.timestamp.map(|t| t.wrapping_sub(self.prev.timestamp)));
                self.prev.offset = f.offset;
                self.prev.timestamp = f.timestamp.unwrap_or(self.prev.timestamp);
                d
            }
        };
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(num.format(offset).as_bytes());
        out.push(b' ');
        match timestamp {
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
}

/// Encodes `frames` as one object's plaintext in the current format ([`CONTENT`]).
pub fn encode_all<'a>(frames: impl IntoIterator<Item = &'a Frame<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::default();
    for f in frames {
        enc.encode(&mut out, f);
    }
    out
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
    layout: Layout,
    prev: Prev,
}

/// Decodes the frames of an object of `partition` written in `layout`.
pub fn decode(buf: &[u8], partition: i32, layout: Layout) -> Frames<'_> {
    Frames { buf, pos: 0, partition, layout, prev: Prev::default() }
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
    // Negative numbers are summed downwards, so i64::MIN reads too.
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        v = v.checked_mul(10)?;
        v = if neg { v.checked_sub(d)? } else { v.checked_add(d)? };
    }
    Some(v)
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
            let d = i64::from(c - b'0');
            n = n.checked_mul(10)?;
            n = if neg { n.checked_sub(d)? } else { n.checked_add(d)? };
            i += 1;
        }
        if i == start {
            return None;
        }
        *slot = Some(n);
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
        let (offset, timestamp) = match self.layout {
            Layout::Whole => (offset, timestamp),
            Layout::Delta => {
                let whole = (self.prev.offset.wrapping_add(offset), timestamp.map(|t| self.prev.timestamp.wrapping_add(t)));
                self.prev = Prev { offset: whole.0, timestamp: whole.1.unwrap_or(self.prev.timestamp) };
                whole
            }
        };
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

    fn encode_in(layout: Layout, frames: &[Frame<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = Encoder::new(layout);
        for f in frames {
            enc.encode(&mut out, f);
        }
        out
    }

    /// A decoded frame's offset, timestamp, key and payload.
    type Decoded<'a> = (i64, Option<i64>, Option<&'a [u8]>, Option<&'a [u8]>);

    fn decoded(buf: &[u8], partition: i32, layout: Layout) -> Vec<Decoded<'_>> {
        decode(buf, partition, layout)
            .map(|f| f.unwrap())
            .map(|f| (f.offset, f.timestamp, f.key.clone().map(|r| &buf[r]), f.payload_in(buf)))
            .collect()
    }

    #[test]
    fn roundtrip_keeps_every_byte_in_both_layouts() {
        let payloads: Vec<Option<&[u8]>> = vec![Some(b"{\"a\":1}"), Some(b""), Some(b"line1\nline2\n"), None, Some(&[0xff, 0x00, 0x9f, b'\n']), Some(b"\"double\"")];
        let frames: Vec<Frame<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let key: Option<&[u8]> = match i % 3 {
                    0 => Some(b"4223"),
                    1 => None,
                    _ => Some(&[0xfe, b'\n', 0x01]),
                };
                // Gaps in the offsets (compaction, transactions) and timestamps out of order.
                let timestamp = (i % 2 == 0).then_some(1_670_000_000_000 - 7 * i as i64);
                Frame { partition: 2, offset: 100 + 3 * i as i64, timestamp, key, payload: *p }
            })
            .collect();
        for layout in [Layout::Whole, Layout::Delta] {
            let buf = encode_in(layout, &frames);
            let got = decoded(&buf, 2, layout);
            let want: Vec<_> = frames.iter().map(|f| (f.offset, f.timestamp, f.key, f.payload)).collect();
            assert_eq!(got, want, "{layout:?}");
            assert!(decode(&buf, 2, layout).all(|f| f.unwrap().partition == 2));
        }
        assert_eq!(encode_all(&frames), encode_in(Layout::Delta, &frames));
    }

    #[test]
    fn delta_headers_are_short_and_any_i64_round_trips() {
        let f = |offset, timestamp| Frame { partition: 0, offset, timestamp, key: Some(b"4223"), payload: Some(b"x") };
        // The first frame is written whole; the next ones as small differences.
        let buf = encode_in(Layout::Delta, &[f(12_345_678, Some(1_795_416_597_147)), f(12_345_679, Some(1_795_416_597_147)), f(12_345_680, None), f(12_345_681, Some(1_795_416_597_150))]);
        assert_eq!(String::from_utf8_lossy(&buf), "12345678 1795416597147 4 1\n4223x\n1 0 4 1\n4223x\n1 - 4 1\n4223x\n1 3 4 1\n4223x\n");
        // Extremes, both ways: the differences wrap and still come back exact.
        let frames = [f(i64::MAX, Some(i64::MIN)), f(0, Some(i64::MAX)), f(i64::MAX, Some(-1)), f(1, Some(i64::MIN)), f(-5, None), f(i64::MIN, Some(0))];
        let buf = encode_in(Layout::Delta, &frames);
        let got: Vec<_> = decoded(&buf, 0, Layout::Delta).into_iter().map(|(o, t, _, _)| (o, t)).collect();
        assert_eq!(got, frames.iter().map(|f| (f.offset, f.timestamp)).collect::<Vec<_>>());
        assert!(integer(b"-9223372036854775808") == Some(i64::MIN) && integer(b"9223372036854775808").is_none());
    }

    #[test]
    fn the_layout_decides_what_the_numbers_mean() {
        let f = |offset| Frame { partition: 0, offset, timestamp: Some(1_000 + offset), key: None, payload: Some(b"{}") };
        let frames = [f(41), f(42), f(44)];
        let whole = encode_in(Layout::Whole, &frames);
        let delta = encode_in(Layout::Delta, &frames);
        assert_eq!(String::from_utf8_lossy(&whole), "41 1041 - 2\n{}\n42 1042 - 2\n{}\n44 1044 - 2\n{}\n");
        assert_eq!(String::from_utf8_lossy(&delta), "41 1041 - 2\n{}\n1 1 - 2\n{}\n2 2 - 2\n{}\n");
        let offsets = |buf: &[u8], l| decoded(buf, 0, l).into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!((offsets(&whole, Layout::Whole), offsets(&delta, Layout::Delta)), (vec![41, 42, 44], vec![41, 42, 44]));
        // The tag in the envelope header picks the layout; unknown tags are not guessed at.
        assert_eq!(READS.map(Layout::of), [Some(Layout::Whole), Some(Layout::Whole), Some(Layout::Delta)]);
        assert_eq!((Layout::of("etl-frames/9"), Layout::Delta.content(), Layout::Whole.content()), (None, CONTENT, "etl-frames/3"));
        assert_eq!((Encoder::default().content(), Encoder::new(Layout::Whole).content()), (CONTENT, "etl-frames/3"));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let frames = [Frame { partition: 0, offset: 1, timestamp: None, key: Some(b"k"), payload: Some(b"abc") }, Frame { partition: 0, offset: 2, timestamp: Some(5), key: None, payload: None }];
        for layout in [Layout::Whole, Layout::Delta] {
            let buf = encode_in(layout, &frames);
            let first = encode_in(layout, &frames[..1]).len();
            for cut in 0..buf.len() {
                let r: Result<Vec<_>, _> = decode(&buf[..cut], 0, layout).collect();
                assert!(cut == 0 || cut == first || r.is_err(), "{layout:?} cut {cut}");
            }
            for bad in [&b"not a header\nxx"[..], b"1 2 3\n", b"1 2 3 4 5\nx", b"1 - - 99999999999999999999\n"] {
                assert!(decode(bad, 0, layout).collect::<Result<Vec<_>, _>>().is_err(), "{:?}", String::from_utf8_lossy(bad));
            }
        }
    }

    #[test]
    fn the_one_pass_header_reads_what_the_careful_one_reads() {
        let lines = [
            "41 1670832000000 4 312", "0 - - -", "7 -5 0 0", "-3 1 2 3", "9223372036854775807 1 2 3", "9223372036854775808 1 2 3", "-9223372036854775808 1 2 3",
            "-9223372036854775809 1 2 3", "1 2 -4 5", "- 1 2 3",
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
        let f = |offset, timestamp| Frame { partition: 0, offset, timestamp, key: None, payload: Some(b"{}") };
        let buf = encode_in(Layout::Delta, &[f(12, Some(1_700_000_000_000)), f(13, Some(1_699_999_999_990))]);
        assert_eq!(header_fast(&buf).map(|(h, _)| h), Some((12, Some(1_700_000_000_000), None, Some(2))));
        assert_eq!(header_fast(&buf[buf.iter().position(|&b| b == b'}').unwrap() + 2..]).map(|(h, _)| h), Some((1, Some(-10), None, Some(2))));
    }
}
