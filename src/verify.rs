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
    pub plaintext: Vec<u8>,
    /// Frames in order.
    pub frames: Vec<frames::OwnedFrame>,
    /// Size of the sealed object.
    pub sealed_bytes: u64,
}

/// Decrypts and decodes one object's bytes, checking its frames against the offsets in its key.
pub fn open_object(key: &str, sealed: &[u8], private_key: &RsaPrivateKey) -> Result<OpenedObject, ReadError> {
    let plaintext = envelope::open(sealed, private_key).map_err(|source| ReadError::Envelope { key: key.into(), source })?;
    let content = |reason: String| ReadError::Content { key: key.into(), reason };
    let frames: Vec<frames::OwnedFrame> = frames::decode(&plaintext).collect::<Result<_, _>>().map_err(|e| content(e.to_string()))?;
    if let Some((_, p, from, to)) = raw_keys::parse_object(key) {
        let mut prev = from - 1;
        for f in &frames {
            if f.partition != p {
                return Err(content(format!("frame at offset {} says partition {}, key says {p}", f.offset, f.partition)));
            }
            if f.offset <= prev || f.offset > to {
                return Err(content(format!("offset {} out of order or outside {from}..={to}", f.offset)));
            }
            prev = f.offset;
        }
        if prev != to {
            return Err(content(format!("object ends at offset {prev}, key says {to}")));
        }
    }
    Ok(OpenedObject { key: key.into(), sealed_bytes: sealed.len() as u64, plaintext, frames })
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
            frames::to_ndjson(&mut buf, f, &o.plaintext[f.payload.clone()], &o.key);
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
