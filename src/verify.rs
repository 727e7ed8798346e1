//! `etl cat` and `etl verify`: read the raw layer back.
//!
//! `verify` checks, per partition, that the claims form one unbroken chain of offsets starting at
//! 0 (data ranges and recorded retention gaps), that every data claim has its object, and that
//! every object decrypts, authenticates, decompresses and holds exactly the offsets its key names.

use futures::StreamExt;
use rsa::RsaPrivateKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use crate::envelope;
use crate::frames;
use crate::lake::{raw_keys, Lake, LakeError};
use crate::raw::{Claim, ClaimKind};

/// Errors reading a raw object.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The object could not be opened.
    #[error("{key}: {source}")]
    Envelope {
        /// Object key.
        key: String,
        /// Cause.
        source: envelope::EnvelopeError,
    },
    /// The plaintext is not valid frames or has the wrong offsets.
    #[error("{key}: {reason}")]
    Content {
        /// Object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing matched.
    #[error("no raw objects match {0:?}")]
    NoMatch(String),
    /// Writing to stdout failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// A decrypted raw object: its plaintext and decoded frames.
pub struct OpenedObject {
    /// Object key.
    pub key: String,
    /// Plaintext buffer the frames point into.
    pub plaintext: envelope::Plaintext,
    /// Frames in order.
    pub frames: Vec<frames::OwnedFrame>,
    /// Size of the sealed object.
    pub sealed_bytes: u64,
}

/// Decrypts and decodes one object's bytes, checking its frames against the offsets in its key.
pub fn open_object(key: &str, sealed: &[u8], private_key: &RsaPrivateKey) -> Result<OpenedObject, ReadError> {
    let o = open_plaintext(key, sealed, private_key)?;
    let frames = o.frames().collect::<Result<Vec<_>, _>>()?;
    Ok(OpenedObject { key: o.key, sealed_bytes: o.sealed_bytes, plaintext: o.plaintext, frames })
}

/// A decrypted raw object whose frames are decoded as they are read ([`OpenedPlaintext::frames`]):
/// no list of frames is built, and each payload is read while its header is still in cache.
pub struct OpenedPlaintext {
    /// Object key.
    pub key: String,
    /// The plaintext (frames).
    pub plaintext: envelope::Plaintext,
    /// Size of the sealed object.
    pub sealed_bytes: u64,
    /// Partition and first and last offsets the key names, when it is a data object's key.
    range: Option<(i32, i64, i64)>,
    /// How its frame headers are written (from the envelope's content tag).
    layout: frames::Layout,
}

/// Decrypts one object's bytes and checks its content tag; the frames are checked as they are
/// read.
pub fn open_plaintext(key: &str, sealed: &[u8], private_key: &RsaPrivateKey) -> Result<OpenedPlaintext, ReadError> {
    let plaintext = envelope::open(sealed, private_key).map_err(|source| ReadError::Envelope { key: key.into(), source })?;
    let (header, _) = envelope::read_header(sealed).map_err(|source| ReadError::Envelope { key: key.into(), source })?;
    let Some(layout) = frames::Layout::of(&header.content) else {
        return Err(ReadError::Content {
            key: key.into(),
            reason: format!("unsupported content {:?} (this etl reads {})", header.content, frames::READS.join(", ")),
        });
    };
    let range = raw_keys::parse_object(key).map(|(_, p, from, to)| (p, from, to));
    Ok(OpenedPlaintext { key: key.into(), plaintext, sealed_bytes: sealed.len() as u64, range, layout })
}

impl OpenedPlaintext {
    /// The frames in order, each checked against the object key: the key's partition, offsets
    /// increasing within its range, and (once the frames end) the last offset the key's last.
    /// The first problem is the last item.
    pub fn frames(&self) -> CheckedFrames<'_> {
        CheckedFrames {
            inner: frames::decode(&self.plaintext, self.range.map_or(0, |r| r.0), self.layout),
            key: &self.key,
            range: self.range,
            prev: self.range.map_or(0, |r| r.1 - 1),
            done: false,
        }
    }
}

/// Frames of an [`OpenedPlaintext`], checked against its key.
pub struct CheckedFrames<'a> {
    inner: frames::Frames<'a>,
    key: &'a str,
    range: Option<(i32, i64, i64)>,
    prev: i64,
    done: bool,
}

impl CheckedFrames<'_> {
    fn fail(&mut self, reason: String) -> Option<Result<frames::OwnedFrame, ReadError>> {
        self.done = true;
        Some(Err(ReadError::Content { key: self.key.into(), reason }))
    }
}

impl Iterator for CheckedFrames<'_> {
    type Item = Result<frames::OwnedFrame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match (self.inner.next(), self.range) {
            (Some(Err(e)), _) => self.fail(e.to_string()),
            (Some(Ok(f)), None) => Some(Ok(f)),
            (Some(Ok(f)), Some((p, from, to))) => {
                if f.partition != p {
                    return self.fail(format!("frame at offset {} says partition {}, key says {p}", f.offset, f.partition));
                }
                if f.offset <= self.prev || f.offset > to {
                    return self.fail(format!("offset {} out of order or outside {from}..={to}", f.offset));
                }
                self.prev = f.offset;
                Some(Ok(f))
            }
            (None, Some((_, _, to))) if self.prev != to => {
                let prev = self.prev;
                self.fail(format!("object ends at offset {prev}, key says {to}"))
            }
            (None, _) => {
                self.done = true;
                None
            }
        }
    }
}

/// Fetches and opens one object (decryption off the async runtime).
pub async fn fetch_object(lake: &Lake, key: &str, private_key: Arc<RsaPrivateKey>) -> Result<OpenedObject, ReadError> {
    let bytes = lake.get(key).await?;
    let key2 = key.to_string();
    tokio::task::spawn_blocking(move || open_object(&key2, &bytes, &private_key))
        .await
        .map_err(|e| ReadError::Content { key: key.into(), reason: format!("decoder panicked: {e}") })?
}

/// Every raw data object under `prefix` (a key, a topic, a partition prefix, or "raw/").
pub async fn list_objects(lake: &Lake, prefix: &str) -> Result<Vec<(String, u64)>, LakeError> {
    let prefix = prefix.trim_start_matches('/');
    let list_prefix = if prefix.starts_with("raw/") || prefix == "raw" { prefix.to_string() } else { format!("raw/{prefix}") };
    // A whole key lists as itself.
    let mut v = lake.list(&list_prefix).await?;
    if v.is_empty() {
        // Prefix may end mid-name (e.g. ".../partition=1/0000"): list the parent and filter.
        if let Some((dir, _)) = list_prefix.rsplit_once('/') {
            v = lake.list(dir).await?.into_iter().filter(|(k, _)| k.starts_with(&list_prefix)).collect();
        }
    }
    v.retain(|(k, _)| raw_keys::parse_object(k).is_some());
    Ok(v)
}

/// `etl cat`: writes every message of the matching objects as NDJSON.
pub async fn cat(lake: &Lake, private_key: Arc<RsaPrivateKey>, prefix: &str, out: &mut dyn Write) -> Result<u64, ReadError> {
    let objects = list_objects(lake, prefix).await?;
    if objects.is_empty() {
        return Err(ReadError::NoMatch(prefix.into()));
    }
    let mut n = 0;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut stream = futures::stream::iter(objects.into_iter().map(|(k, _)| {
        let pk = private_key.clone();
        async move { fetch_object(lake, &k, pk).await }
    }))
    .buffered(crate::parallelism());
    while let Some(o) = stream.next().await {
        let o = o?;
        for f in &o.frames {
            frames::to_ndjson(&mut buf, f, &o.plaintext, &o.key);
            n += 1;
            if buf.len() > (1 << 20) {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(n)
}

/// One problem found by `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyIssue {
    /// Object or claim key.
    pub object: String,
    /// Partition, when known.
    pub partition: Option<i32>,
    /// What is wrong.
    pub error: String,
}

/// Per-partition figures of `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionCheck {
    /// Objects checked.
    pub objects: u64,
    /// Records in them.
    pub records: u64,
    /// Next offset after the chain (the checkpoint).
    pub next_offset: i64,
    /// Recorded retention gaps (from, to).
    pub gaps: Vec<(i64, i64)>,
}

/// Result of `etl verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Objects checked.
    pub objects: u64,
    /// Records in them.
    pub records: u64,
    /// Sealed bytes read.
    pub bytes: u64,
    /// Per topic, per partition.
    pub topics: BTreeMap<String, BTreeMap<i32, PartitionCheck>>,
    /// One entry per bad object or broken chain link.
    pub errors: Vec<VerifyIssue>,
    /// Raw → standard reconciliation, when a standard layer exists.
    pub standard: Option<Reconciliation>,
}

/// ` → N records` when messages holding several records made more records than messages.
fn batched(b: &Books) -> String {
    if b.records == b.raw_records {
        String::new()
    } else {
        format!(" → {} records", b.records)
    }
}

impl VerifyReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        let mut s = format!("verified {} objects, {} records, {:.1} MB: {} errors\n", self.objects, self.records, self.bytes as f64 / 1e6, self.errors.len());
        for (t, parts) in &self.topics {
            for (p, c) in parts {
                s.push_str(&format!("  {t} partition {p}: {} objects, {} records, next offset {}{}\n", c.objects, c.records, c.next_offset,
                    if c.gaps.is_empty() { String::new() } else { format!(", gaps {:?}", c.gaps) }));
            }
        }
        if let Some(r) = &self.standard {
            s.push_str(&format!(
                "standard version {}: {} raw objects, {} raw records{} = {} rows + {} rejects\n",
                r.version, r.raw_objects, r.total.raw_records, batched(&r.total), r.total.rows, r.total.rejects
            ));
            for (tp, b) in &r.partitions {
                s.push_str(&format!("  {tp}: {} raw records{} = {} rows + {} rejects\n", b.raw_records, batched(b), b.rows, b.rejects));
            }
        }
        for e in &self.errors {
            s.push_str(&format!("  ERROR {}: {}\n", e.object, e.error));
        }
        s
    }
}

/// `etl verify`: checks the whole raw layer (or one topic).
pub async fn verify(lake: &Lake, private_key: Arc<RsaPrivateKey>, topic: Option<&str>) -> Result<VerifyReport, LakeError> {
    let mut report = VerifyReport::default();
    let topics: Vec<String> = match topic {
        Some(t) => vec![t.to_string()],
        None => lake.list_dirs("raw").await?.into_iter().filter_map(|d| d.strip_prefix("raw/").map(str::to_string)).collect(),
    };
    for t in topics {
        let objects = list_objects(lake, &format!("raw/{t}/partition=")).await?;
        let claims = lake.list(&format!("raw/{t}/_claims/")).await?;
        let mut by_part: BTreeMap<i32, Vec<Claim>> = BTreeMap::new();
        for (k, _) in &claims {
            let p = k.split("partition=").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse::<i32>().ok());
            match (p, lake.get_json::<Claim>(k).await) {
                (Some(p), Ok(Some(c))) => by_part.entry(p).or_default().push(c),
                (p, Ok(_)) => report.errors.push(VerifyIssue { object: k.clone(), partition: p, error: "claim key is not in the layout".into() }),
                (p, Err(e)) => report.errors.push(VerifyIssue { object: k.clone(), partition: p, error: e.to_string() }),
            }
        }
        let mut object_set: BTreeMap<(i32, i64), (String, i64)> = BTreeMap::new();
        for (k, _) in &objects {
            if let Some((_, p, from, to)) = raw_keys::parse_object(k) {
                object_set.insert((p, from), (k.clone(), to));
                by_part.entry(p).or_default();
            }
        }
        let checks = report.topics.entry(t.clone()).or_default();
        for (p, mut cs) in by_part {
            cs.sort_by_key(|c| c.from);
            let check = checks.entry(p).or_default();
            let mut expect = 0i64;
            for c in &cs {
                let ck = raw_keys::claim(&t, p, c.from);
                if c.from != expect {
                    report.errors.push(VerifyIssue { object: ck.clone(), partition: Some(p), error: format!("chain broken: expected a range starting at {expect}, found {}..={}", c.from, c.to) });
                }
                match c.kind {
                    ClaimKind::Gap => check.gaps.push((c.from, c.to)),
                    ClaimKind::Data => match object_set.get(&(p, c.from)) {
                        Some((_, to)) if *to == c.to => {}
                        Some((k, to)) => report.errors.push(VerifyIssue { object: k.clone(), partition: Some(p), error: format!("object ends at {to} but its claim says {}", c.to) }),
                        None => report.errors.push(VerifyIssue {
                            object: raw_keys::object(&t, p, c.from, c.to),
                            partition: Some(p),
                            error: "claimed but missing (a run was interrupted; the next `etl raw` repairs it)".into(),
                        }),
                    },
                }
                expect = c.to + 1;
            }
            check.next_offset = expect;
            for ((op, from), (k, _)) in object_set.range((p, i64::MIN)..=(p, i64::MAX)) {
                debug_assert_eq!(*op, p);
                if !cs.iter().any(|c| c.from == *from && c.kind == ClaimKind::Data) {
                    report.errors.push(VerifyIssue { object: k.clone(), partition: Some(p), error: "object has no claim".into() });
                }
            }
        }
        let mut stream = futures::stream::iter(objects.into_iter().map(|(k, _)| {
            let pk = private_key.clone();
            async move {
                let r = fetch_object(lake, &k, pk).await;
                (k, r)
            }
        }))
        .buffer_unordered(crate::parallelism());
        while let Some((k, r)) = stream.next().await {
            let p = raw_keys::parse_object(&k).map(|(_, p, _, _)| p);
            match r {
                Ok(o) => {
                    report.objects += 1;
                    report.records += o.frames.len() as u64;
                    report.bytes += o.sealed_bytes;
                    if let Some(c) = p.and_then(|p| checks.get_mut(&p)) {
                        c.objects += 1;
                        c.records += o.frames.len() as u64;
                    }
                }
                Err(e) => report.errors.push(VerifyIssue { object: k.clone(), partition: p, error: e.to_string() }),
            }
        }
    }
    report.errors.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(report)
}

/// Books of one Kafka partition: raw records vs rows + rejects in the standard layer.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Books {
    /// Kafka messages in the raw objects the standard layer says it consumed (their claims).
    pub raw_records: u64,
    /// Of those, the messages (offsets) that have at least one row or reject: all of them.
    pub messages_seen: u64,
    /// Records the standard layer counted in them: one per message, or one per element of a
    /// message that holds several (its manifest's figures).
    pub records: u64,
    /// Rows in `breadcrumbs`.
    pub rows: u64,
    /// Rows in `rejects`.
    pub rejects: u64,
}

/// Reconciliation of the standard layer against the raw layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciliation {
    /// Manifest version checked.
    pub version: u64,
    /// Raw objects consumed.
    pub raw_objects: u64,
    /// Totals.
    pub total: Books,
    /// Per "topic/partition".
    pub partitions: BTreeMap<String, Books>,
    /// Problems (unbalanced books, a record twice, a file missing).
    pub errors: Vec<VerifyIssue>,
}

/// Checks that every raw record consumed by `standard` is exactly one row or one reject:
/// counts come from the claims (raw side), the manifest and the live Parquet files (standard
/// side). Every message consumed has a row or a reject (its offset is seen), and the rows and
/// rejects add up to the records counted when it was converted: one per message, or one per
/// element of a message holding several, so a message converted twice shows as rows too many.
pub async fn reconcile_standard(lake: &Lake) -> Result<Option<Reconciliation>, crate::standard::StandardError> {
    use arrow::array::{Array, Int32Array, Int64Array, StringArray};
    let layer = crate::table::Layer::new(lake.clone(), "standard");
    let Some(m) = layer.latest().await? else { return Ok(None) };
    let mut rec = Reconciliation { version: m.version, raw_objects: m.consumed.len() as u64, ..Default::default() };
    // Raw side: the claim of each consumed object says how many records it holds.
    for (key, figures) in &m.consumed {
        let Some((topic, p, from, _)) = raw_keys::parse_object(key) else { continue };
        let claim: Option<Claim> = lake.get_json(&raw_keys::claim(&topic, p, from)).await?;
        let messages = match claim {
            Some(c) => c.records,
            None => {
                rec.errors.push(VerifyIssue { object: key.clone(), partition: Some(p), error: "consumed raw object has no claim".into() });
                0
            }
        };
        let books = rec.partitions.entry(format!("{topic}/{p}")).or_default();
        books.raw_records += messages;
        books.records += figures.get("records").and_then(serde_json::Value::as_u64).unwrap_or(messages);
    }
    // Standard side: lineage columns of every live file.
    let mut seen: std::collections::HashSet<(String, i32, i64)> = std::collections::HashSet::new();
    for (table, files) in &m.tables {
        for f in files {
            let bytes = match lake.get_opt(&f.path).await? {
                Some(b) => b,
                None => {
                    rec.errors.push(VerifyIssue { object: f.path.clone(), partition: None, error: "live file listed in the manifest is missing".into() });
                    continue;
                }
            };
            let path = f.path.clone();
            let batches = tokio::task::spawn_blocking(move || {
                let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?;
                let mask = parquet::arrow::ProjectionMask::columns(b.parquet_schema(), ["kafka_topic", "kafka_partition", "kafka_offset"]);
                b.with_projection(mask).build()?.collect::<Result<Vec<_>, _>>().map_err(parquet::errors::ParquetError::from)
            })
            .await
            .map_err(|e| crate::standard::StandardError::Parquet { what: path.clone(), reason: e.to_string() })?
            .map_err(|e| crate::standard::StandardError::Parquet { what: path.clone(), reason: e.to_string() })?;
            for b in batches {
                let (Some(t), Some(p), Some(o)) = (
                    b.column_by_name("kafka_topic").and_then(|c| c.as_any().downcast_ref::<StringArray>()),
                    b.column_by_name("kafka_partition").and_then(|c| c.as_any().downcast_ref::<Int32Array>()),
                    b.column_by_name("kafka_offset").and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
                ) else {
                    rec.errors.push(VerifyIssue { object: f.path.clone(), partition: None, error: "lineage columns missing".into() });
                    continue;
                };
                for i in 0..b.num_rows() {
                    let books = rec.partitions.entry(format!("{}/{}", t.value(i), p.value(i))).or_default();
                    if table == "rejects" {
                        books.rejects += 1;
                    } else {
                        books.rows += 1;
                    }
                    if seen.insert((t.value(i).to_string(), p.value(i), o.value(i))) {
                        books.messages_seen += 1;
                    }
                }
            }
        }
    }
    for (tp, b) in &rec.partitions {
        rec.total.raw_records += b.raw_records;
        rec.total.messages_seen += b.messages_seen;
        rec.total.records += b.records;
        rec.total.rows += b.rows;
        rec.total.rejects += b.rejects;
        let partition = tp.rsplit('/').next().and_then(|p| p.parse().ok());
        if b.messages_seen != b.raw_records {
            rec.errors.push(VerifyIssue {
                object: format!("standard/ (partition {tp})"),
                partition,
                error: format!("books do not balance: {} raw records (messages) but {} of them have a row or reject", b.raw_records, b.messages_seen),
            });
        }
        if b.rows + b.rejects != b.records {
            rec.errors.push(VerifyIssue {
                object: format!("standard/ (partition {tp})"),
                partition,
                error: format!("books do not balance: {} records converted but {} rows + {} rejects", b.records, b.rows, b.rejects),
            });
        }
    }
    Ok(Some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Encoder, Frame, Layout};
    use crate::keys::test_keypair;

    fn sealed(content: &str, frames: &[Frame<'_>]) -> Vec<u8> {
        let (_, public) = test_keypair();
        let mut plain = Vec::new();
        // An unknown tag gets the current layout: what matters is that it is refused.
        let mut enc = Encoder::new(Layout::of(content).unwrap_or(Layout::Delta));
        for f in frames {
            enc.encode(&mut plain, f);
        }
        envelope::seal_bytes(&plain, &public, 5, content).unwrap().bytes
    }

    #[test]
    fn objects_of_every_frame_version_open_and_others_are_refused_by_name() {
        let (private, _) = test_keypair();
        let key = "raw/t/partition=3/00000000000000000010-00000000000000000011.frames.zz.enc";
        let f = |offset, payload| Frame { partition: 3, offset, timestamp: Some(1), key: None, payload };
        // etl-frames/2: written before null payloads had their own mark.
        let o = open_object(key, &sealed("etl-frames/2", &[f(10, Some(b"{}")), f(11, Some(b""))]), &private).unwrap();
        assert_eq!(o.frames.iter().map(|x| x.payload_in(&o.plaintext)).collect::<Vec<_>>(), [Some(&b"{}"[..]), Some(b"")]);
        assert!(o.frames.iter().all(|x| x.payload.is_some()));
        // etl-frames/3 (whole offsets) and /4 (differences): a tombstone comes back as a null payload.
        for content in ["etl-frames/3", frames::CONTENT] {
            let o = open_object(key, &sealed(content, &[f(10, Some(b"{}")), f(11, None)]), &private).unwrap();
            assert_eq!((o.frames[0].payload.is_some(), o.frames[1].payload.is_none()), (true, true), "{content}");
            assert_eq!(o.frames.iter().map(|x| (x.offset, x.timestamp)).collect::<Vec<_>>(), [(10, Some(1)), (11, Some(1))], "{content}");
        }
        // Bytes as an earlier etl wrote them, not as this one's encoder would.
        let old = envelope::seal_bytes(b"10 1 - 2\n{}\n11 1 - -\n\n", &test_keypair().1, 5, "etl-frames/3").unwrap().bytes;
        let o = open_object(key, &old, &private).unwrap();
        assert_eq!(o.frames.iter().map(|x| (x.offset, x.payload.is_some())).collect::<Vec<_>>(), [(10, true), (11, false)]);
        let Err(e) = open_object(key, &sealed("etl-frames/9", &[f(10, Some(b"{}")), f(11, None)]), &private) else { panic!("etl-frames/9 opened") };
        let e = e.to_string();
        assert!(e.contains(key) && e.contains("etl-frames/9") && e.contains("etl-frames/3") && e.contains(frames::CONTENT), "{e}");
    }

    #[test]
    fn frames_are_checked_against_the_offsets_their_key_names() {
        let (private, public) = test_keypair();
        let key = "raw/t/partition=3/00000000000000000010-00000000000000000012.frames.zz.enc";
        let f = |offset| Frame { partition: 3, offset, timestamp: None, key: None, payload: Some(&b"{}"[..]) };
        let open = |frames: &[Frame<'_>]| open_object(key, &sealed(frames::CONTENT, frames), &private).map(|o| o.frames.len()).map_err(|e| e.to_string());
        assert_eq!(open(&[f(10), f(11), f(12)]), Ok(3));
        for (frames, says) in [
            (vec![f(10), f(12), f(11)], "offset 11 out of order or outside 10..=12"),
            (vec![f(10), f(11), f(13)], "offset 13 out of order or outside 10..=12"),
            (vec![f(9), f(10), f(11), f(12)], "offset 9 out of order or outside 10..=12"),
            (vec![f(10), f(11)], "object ends at offset 11, key says 12"),
            (vec![], "object ends at offset 9, key says 12"),
        ] {
            let e = open(&frames).unwrap_err();
            assert!(e.starts_with(key) && e.ends_with(says), "{e}");
        }
        // Read as they come: the frames before the problem, then the problem, then nothing.
        let o = open_plaintext(key, &sealed(frames::CONTENT, &[f(10), f(12), f(11), f(12)]), &private).unwrap();
        let items: Vec<_> = o.frames().map(|r| r.map(|f| f.offset).map_err(|e| e.to_string())).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!((&items[0], &items[1]), (&Ok(10), &Ok(12)));
        assert!(items[2].as_ref().is_err_and(|e| e.ends_with("offset 11 out of order or outside 10..=12")));
        // A frame cut short is named by its place in the plaintext.
        let cut = envelope::seal_bytes(b"10 - - 2\n{}\n1 - - 9\n{}\n", &public, 5, frames::CONTENT).unwrap().bytes;
        let e = open_object(key, &cut, &private).err().unwrap().to_string();
        assert!(e.contains("corrupt frame at plaintext byte 12") && e.contains("payload of 9 bytes overrun"), "{e}");
    }
}
