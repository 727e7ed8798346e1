//! The lake: an `Arc<dyn ObjectStore>` chosen from a URL, and the key layout of every layer.
//!
//! ```text
//! raw/<topic>/partition=<p>/<from:020>-<to:020>.frames.zz.enc   sealed Kafka messages, offsets from..=to
//! raw/<topic>/_claims/partition=<p>/<from:020>.json             create-only claim of an offset range
//! raw/<topic>/_gaps/partition=<p>/<from:020>-<to:020>.json      retention gaps seen (offsets lost in Kafka)
//! raw/<topic>/_reports/<utc-time>-<run>.json                     run reports of `etl raw`
//! ```
//!
//! All data writes are create-only (`PutMode::Create`): a key, once written, never changes.
//! Environment variables are read only by the object_store builders' `from_env`.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

/// Errors talking to the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The URL does not name a supported store.
    #[error("unsupported lake URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A store operation failed.
    #[error("lake {op} {key}: {source}")]
    Store {
        /// Operation.
        op: &'static str,
        /// Object key.
        key: String,
        /// Cause.
        source: object_store::Error,
    },
    /// An object that should be JSON is not.
    #[error("lake object {key} is not valid JSON: {reason}")]
    Json {
        /// Object key.
        key: String,
        /// Parser message.
        reason: String,
    },
}

/// Result of a create-only put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call created the object.
    New,
    /// The object already existed; nothing was written.
    Existed,
}

/// A handle on the lake: the store plus the URL it came from (for messages).
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl Lake {
    /// Opens the lake at `url`: `file:///dir`, a plain path, `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix`.
    pub fn open(url: &str) -> Result<Self, LakeError> {
        let store = build_store(url)?;
        Ok(Self { store, url: url.to_string() })
    }

    /// Wraps an existing store (tests, in-memory).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str) -> Self {
        Self { store, url: url.to_string() }
    }

    /// The URL the lake was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes `bytes` at `key` only if nothing is there yet.
    pub async fn put_create(&self, key: &str, bytes: Bytes) -> Result<Created, LakeError> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&Path::from(key), PutPayload::from_bytes(bytes), opts).await {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => Ok(Created::Existed),
            Err(source) => Err(LakeError::Store { op: "create", key: key.into(), source }),
        }
    }

    /// Writes `bytes` at `key`, replacing what is there (reports, manifests pointers only).
    pub async fn put_overwrite(&self, key: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|source| LakeError::Store { op: "put", key: key.into(), source })
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|source| LakeError::Store { op: "read", key: key.into(), source }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(LakeError::Store { op: "get", key: key.into(), source }),
        }
    }

    /// Reads a whole object that must exist.
    pub async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => r.bytes().await.map_err(|source| LakeError::Store { op: "read", key: key.into(), source }),
            Err(source) => Err(LakeError::Store { op: "get", key: key.into(), source }),
        }
    }

    /// Reads and parses a JSON object; `None` if it does not exist.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LakeError> {
        match self.get_opt(key).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| LakeError::Json { key: key.into(), reason: e.to_string() }),
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, LakeError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(LakeError::Store { op: "head", key: key.into(), source }),
        }
    }

    /// Lists every object under `prefix` (recursively) as (key, size), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, LakeError> {
        let p = Path::from(prefix);
        let mut out: Vec<(String, u64)> = self
            .store
            .list(Some(&p))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(|source| LakeError::Store { op: "list", key: prefix.into(), source })?;
        out.sort();
        Ok(out)
    }

    /// Lists the immediate "directories" under `prefix`.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, LakeError> {
        let p = Path::from(prefix);
        let r = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|source| LakeError::Store { op: "list", key: prefix.into(), source })?;
        let mut v: Vec<String> = r.common_prefixes.iter().map(|p| p.to_string()).collect();
        v.sort();
        Ok(v)
    }

    /// Deletes an object (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), LakeError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(LakeError::Store { op: "delete", key: key.into(), source }),
        }
    }
}

fn build_store(url: &str) -> Result<Arc<dyn ObjectStore>, LakeError> {
    let bad = |reason: &str| LakeError::Url { url: url.into(), reason: reason.into() };
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("file", url),
    };
    let (bucket, prefix) = match rest.split_once('/') {
        Some((b, p)) => (b, p.trim_matches('/')),
        None => (rest, ""),
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        "file" => {
            let path = if url.starts_with("file://") {
                url::Url::parse(url).ok().and_then(|u| u.to_file_path().ok()).ok_or_else(|| bad("not a valid file URL"))?
            } else {
                std::path::PathBuf::from(url)
            };
            std::fs::create_dir_all(&path).map_err(|e| bad(&format!("cannot create lake directory {}: {e}", path.display())))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(&e.to_string()))?;
            return Ok(Arc::new(fs.with_automatic_cleanup(true)));
        }
        "s3" | "s3a" => {
            if bucket.is_empty() {
                return Err(bad("missing bucket"));
            }
            Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| bad(&e.to_string()))?,
            )
        }
        "gs" => {
            if bucket.is_empty() {
                return Err(bad("missing bucket"));
            }
            Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| bad(&e.to_string()))?,
            )
        }
        "az" | "azure" | "abfs" => {
            if bucket.is_empty() {
                return Err(bad("missing container"));
            }
            Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(bucket)
                    .with_retry(retry_config())
                    .build()
                    .map_err(|e| bad(&e.to_string()))?,
            )
        }
        other => return Err(bad(&format!("unknown scheme {other:?} (use file://, s3://, gs:// or az://)"))),
    };
    Ok(if prefix.is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix)) })
}

/// Retries with exponential backoff on 5xx, timeouts and connection errors. Safe for create-only
/// puts: a retried create that actually landed the first time reports `AlreadyExists`, which the
/// callers treat as "already there".
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: std::env::var("ETL_STORE_MAX_RETRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(8),
        retry_timeout: std::time::Duration::from_secs(120),
    }
}

/// Key layout of the raw layer.
pub mod raw_keys {
    /// Prefix of one topic's raw layer.
    pub fn topic(topic: &str) -> String {
        format!("raw/{topic}")
    }
    /// Prefix of one partition's data objects.
    pub fn partition(topic: &str, p: i32) -> String {
        format!("raw/{topic}/partition={p}/")
    }
    /// Data object holding offsets `from..=to`.
    pub fn object(topic: &str, p: i32, from: i64, to: i64) -> String {
        format!("raw/{topic}/partition={p}/{from:020}-{to:020}.frames.zz.enc")
    }
    /// Claims prefix of one partition.
    pub fn claims(topic: &str, p: i32) -> String {
        format!("raw/{topic}/_claims/partition={p}/")
    }
    /// The claim of the range starting at `from`.
    pub fn claim(topic: &str, p: i32, from: i64) -> String {
        format!("raw/{topic}/_claims/partition={p}/{from:020}.json")
    }
    /// Record of a retention gap.
    pub fn gap(topic: &str, p: i32, from: i64, to: i64) -> String {
        format!("raw/{topic}/_gaps/partition={p}/{from:020}-{to:020}.json")
    }
    /// A run report.
    pub fn report(topic: &str, stamp: &str, run: &str) -> String {
        format!("raw/{topic}/_reports/{stamp}-{run}.json")
    }

    /// Parses a data object key into (topic, partition, from, to).
    pub fn parse_object(key: &str) -> Option<(String, i32, i64, i64)> {
        let rest = key.strip_prefix("raw/")?;
        let (topic, rest) = rest.split_once("/partition=")?;
        let (p, file) = rest.split_once('/')?;
        let range = file.strip_suffix(".frames.zz.enc")?;
        let (from, to) = range.split_once('-')?;
        Some((topic.to_string(), p.parse().ok()?, from.parse().ok()?, to.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_sort_by_offset_and_parse_back() {
        let a = raw_keys::object("bc", 2, 9, 10);
        let b = raw_keys::object("bc", 2, 11, 200);
        assert!(a < b);
        assert_eq!(raw_keys::parse_object(&b), Some(("bc".into(), 2, 11, 200)));
        assert_eq!(raw_keys::parse_object("raw/bc/_claims/partition=2/x.json"), None);
    }

    #[test]
    fn urls_pick_a_backend_or_say_why_not() {
        assert!(matches!(Lake::open("ftp://x/y"), Err(LakeError::Url { .. })));
        assert!(matches!(Lake::open("s3://"), Err(LakeError::Url { .. })));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("lake").display());
        assert!(Lake::open(&url).is_ok());
        assert!(Lake::open(dir.path().join("plain").to_str().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn create_only_put_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(lake.put_create("a/b", Bytes::from_static(b"one")).await.unwrap(), Created::New);
        assert_eq!(lake.put_create("a/b", Bytes::from_static(b"two")).await.unwrap(), Created::Existed);
        assert_eq!(lake.get("a/b").await.unwrap(), Bytes::from_static(b"one"));
        assert_eq!(lake.list("a").await.unwrap(), vec![("a/b".to_string(), 3)]);
        assert!(lake.get_opt("a/c").await.unwrap().is_none());
    }
}
