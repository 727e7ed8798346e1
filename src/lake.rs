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

/// The layers of the lake; each may live in a store (bucket) of its own.
pub const LAYERS: [&str; 3] = ["raw", "standard", "archive"];

/// A handle on the lake: one store for every layer, or one per layer (the keys inside each
/// bucket keep their `raw/`, `standard/`, `archive/` prefix), plus the URLs (for messages).
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// Per-layer stores: (layer, store, url).
    layers: Vec<(&'static str, Arc<dyn ObjectStore>, String)>,
}

impl Lake {
    /// Opens the lake at `url`: `file:///dir`, a plain path, `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix`.
    pub fn open(url: &str) -> Result<Self, LakeError> {
        let store = build_store(url)?;
        Ok(Self { store, url: url.to_string(), layers: Vec::new() })
    }

    /// Opens a lake whose layers may live in stores of their own: `overrides` maps a layer
    /// (`raw`, `standard`, `archive`) to its URL; the other layers live at `default`.
    pub fn open_layers(default: &str, overrides: &[(&str, String)]) -> Result<Self, LakeError> {
        let mut lake = Self::open(default)?;
        for (layer, url) in overrides {
            let Some(name) = LAYERS.iter().find(|l| *l == layer) else {
                return Err(LakeError::Url { url: url.clone(), reason: format!("unknown layer {layer:?}") });
            };
            if url != default {
                lake.layers.push((name, build_store(url)?, url.clone()));
            }
        }
        Ok(lake)
    }

    /// Wraps an existing store (tests, in-memory).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: &str) -> Self {
        Self { store, url: url.to_string(), layers: Vec::new() }
    }

    /// The URL the lake was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The default object store (every layer without a store of its own).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store holding `key` (routed by its first path segment, the layer).
    pub fn store_for(&self, key: &str) -> &Arc<dyn ObjectStore> {
        let layer = key.trim_start_matches('/').split('/').next().unwrap_or_default();
        self.layers.iter().find(|(l, _, _)| *l == layer).map_or(&self.store, |(_, s, _)| s)
    }

    /// The URL of the store holding `layer`.
    pub fn layer_url(&self, layer: &str) -> &str {
        self.layers.iter().find(|(l, _, _)| *l == layer).map_or(&self.url, |(_, _, u)| u)
    }

    /// Writes `bytes` at `key` only if nothing is there yet.
    pub async fn put_create(&self, key: &str, bytes: Bytes) -> Result<Created, LakeError> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store_for(key).put_opts(&Path::from(key), PutPayload::from_bytes(bytes), opts).await {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => Ok(Created::Existed),
            Err(source) => Err(LakeError::Store { op: "create", key: key.into(), source }),
        }
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store_for(key).get(&Path::from(key)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|source| LakeError::Store { op: "read", key: key.into(), source }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(LakeError::Store { op: "get", key: key.into(), source }),
        }
    }

    /// Reads a whole object that must exist.
    pub async fn get(&self, key: &str) -> Result<Bytes, LakeError> {
        match self.store_for(key).get(&Path::from(key)).await {
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
        match self.store_for(key).head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(LakeError::Store { op: "head", key: key.into(), source }),
        }
    }

    /// Lists every object under `prefix` (recursively) as (key, size), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, LakeError> {
        let p = Path::from(prefix);
        let mut out: Vec<(String, u64)> = self
            .store_for(prefix)
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
            .store_for(prefix)
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|source| LakeError::Store { op: "list", key: prefix.into(), source })?;
        let mut v: Vec<String> = r.common_prefixes.iter().map(|p| p.to_string()).collect();
        v.sort();
        Ok(v)
    }

    /// Deletes an object (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), LakeError> {
        match self.store_for(key).delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(LakeError::Store { op: "delete", key: key.into(), source }),
        }
    }
}

/// Builds the store a lake URL names. This is the only place that reads the environment.
///
/// Credentials and endpoints come from each cloud's usual variables, read by the object_store
/// builders' `from_env` (so a lake behaves like the cloud's own tooling would):
///
/// - `s3://bucket/prefix` (also `s3a://`): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
///   `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`),
///   `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` / `AWS_ENDPOINT_URL_S3` (S3-compatible stores and
///   emulators), `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` (default `false`: path
///   style, what emulators and MinIO want), `AWS_CONDITIONAL_PUT` (default `etag`: create-only
///   puts send `If-None-Match: *`, which S3 honours since 2024-08; `disabled` makes every
///   create-only put fail), and web-identity / ECS / instance-metadata credentials.
///   `~/.aws/config` profiles are not read.
/// - `az://container/prefix` (also `azure://`, `abfs://`): `AZURE_STORAGE_ACCOUNT_NAME`,
///   `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_TOKEN`, `AZURE_STORAGE_CLIENT_ID` /
///   `_SECRET` / `AZURE_STORAGE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`, managed identity,
///   `AZURE_STORAGE_ENDPOINT`, `AZURE_ALLOW_HTTP`; `AZURE_STORAGE_USE_EMULATOR=true` targets
///   Azurite at `AZURITE_BLOB_STORAGE_URL` (default `http://127.0.0.1:10000`) with its
///   well-known `devstoreaccount1` account and key unless others are given.
///   `AZURE_STORAGE_CONNECTION_STRING` is not read.
/// - `gs://bucket/prefix`: `GOOGLE_SERVICE_ACCOUNT` (path of a key file) or
///   `GOOGLE_SERVICE_ACCOUNT_KEY` (its JSON), else application default credentials
///   (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user credentials, the metadata server);
///   `GOOGLE_BASE_URL`, `GOOGLE_ALLOW_HTTP`. A key JSON may carry `"gcs_base_url"` and
///   `"disable_oauth": true` for emulators.
///
/// Added here, because object_store does not read them:
///
/// - an endpoint / base URL that is `http://` (from the variables above, or `gcs_base_url` in
///   a service-account key) allows plain HTTP, unless `AWS_ALLOW_HTTP` / `AZURE_ALLOW_HTTP` /
///   `GOOGLE_ALLOW_HTTP` says otherwise — object_store would otherwise refuse the scheme at the
///   first request;
/// - `STORAGE_EMULATOR_HOST` (the Google client libraries' emulator switch, `host:port` or a
///   URL): GCS requests go there over HTTP without OAuth;
/// - `ETL_STORE_MAX_RETRIES` (default 8): retries of a failed request (5xx, timeouts,
///   connection errors) with exponential backoff 100 ms → 5 s, at most 120 s in all; `0`
///   fails at the first error.
fn build_store(url: &str) -> Result<Arc<dyn ObjectStore>, LakeError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};
    use object_store::ClientConfigKey;

    let bad = |reason: &str| LakeError::Url { url: url.into(), reason: reason.into() };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let is_http = |u: &Option<String>| u.as_deref().is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("http://"));
    let retry = || -> Result<object_store::RetryConfig, LakeError> {
        let max_retries = match env("ETL_STORE_MAX_RETRIES") {
            None => DEFAULT_MAX_RETRIES,
            Some(v) => v.trim().parse().map_err(|_| bad(&format!("ETL_STORE_MAX_RETRIES={v:?} is not a number of retries")))?,
        };
        Ok(retry_config(max_retries))
    };
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
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry()?);
            let endpoint = b.get_config_value(&AmazonS3ConfigKey::S3Endpoint).or_else(|| b.get_config_value(&AmazonS3ConfigKey::Endpoint));
            if is_http(&endpoint) && env("AWS_ALLOW_HTTP").is_none() {
                b = b.with_allow_http(true);
            }
            Arc::new(b.build().map_err(|e| bad(&e.to_string()))?)
        }
        "gs" => {
            if bucket.is_empty() {
                return Err(bad("missing bucket"));
            }
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).with_retry(retry()?);
            let mut base_url = b.get_config_value(&GoogleConfigKey::BaseUrl);
            if let Some(host) = env("STORAGE_EMULATOR_HOST") {
                let emulator = if host.contains("://") { host } else { format!("http://{host}") };
                b = b
                    .with_base_url(emulator.trim_end_matches('/'))
                    .with_credentials(Arc::new(object_store::StaticCredentialProvider::new(GcpCredential { bearer: String::new() })));
                base_url = Some(emulator);
            }
            if base_url.is_none() {
                // An emulator's key JSON names its base URL (object_store reads it at build).
                let key = b.get_config_value(&GoogleConfigKey::ServiceAccountKey).or_else(|| {
                    b.get_config_value(&GoogleConfigKey::ServiceAccount).and_then(|path| std::fs::read_to_string(path).ok())
                });
                base_url = key
                    .and_then(|k| serde_json::from_str::<serde_json::Value>(&k).ok())
                    .and_then(|v| v.get("gcs_base_url").and_then(|u| u.as_str()).map(str::to_string));
            }
            if is_http(&base_url) && env("GOOGLE_ALLOW_HTTP").is_none() {
                b = b.with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
            }
            Arc::new(b.build().map_err(|e| bad(&e.to_string()))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            if bucket.is_empty() {
                return Err(bad("missing container"));
            }
            let mut b = MicrosoftAzureBuilder::from_env().with_retry(retry()?);
            // `container@account.dfs.core.windows.net` names the account too (one per layer).
            b = match bucket.split_once('@') {
                Some(_) => b.with_url(format!("{scheme}://{bucket}")),
                None => b.with_container_name(bucket),
            };
            if is_http(&b.get_config_value(&AzureConfigKey::Endpoint)) && env("AZURE_ALLOW_HTTP").is_none() {
                b = b.with_allow_http(true);
            }
            Arc::new(b.build().map_err(|e| bad(&e.to_string()))?)
        }
        other => return Err(bad(&format!("unknown scheme {other:?} (use file://, s3://, gs:// or az://)"))),
    };
    Ok(if prefix.is_empty() { store } else { Arc::new(object_store::prefix::PrefixStore::new(store, prefix)) })
}

/// Retries of one store request unless `ETL_STORE_MAX_RETRIES` says otherwise.
const DEFAULT_MAX_RETRIES: usize = 8;

/// Retries with exponential backoff on 5xx, timeouts and connection errors. Safe for create-only
/// puts: a retried create that actually landed the first time reports `AlreadyExists`, which the
/// callers treat as "already there".
fn retry_config(max_retries: usize) -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(5),
            base: 2.0,
        },
        max_retries,
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
    fn abfss_urls_name_container_and_account() {
        let lake = Lake::open("abfss://lake@acmeetlraw.dfs.core.windows.net/prefix").unwrap();
        let d = format!("{:?}", lake.store());
        assert!(d.contains("acmeetlraw") && d.contains("lake"), "{d}");
    }

    #[test]
    fn urls_pick_a_backend_or_say_why_not() {
        for (url, why) in [
            ("ftp://x/y", "unknown scheme \"ftp\""),
            ("s3://", "missing bucket"),
            ("s3a:///prefix", "missing bucket"),
            ("gs://", "missing bucket"),
            ("az://", "missing container"),
            ("abfs:///x", "missing container"),
            ("file://relative/x", "not a valid file URL"),
        ] {
            match Lake::open(url) {
                Err(e @ LakeError::Url { .. }) => assert!(e.to_string().contains(why), "{url}: {e}"),
                other => panic!("{url}: expected a URL error, got {other:?}"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("lake").display());
        assert!(Lake::open(&url).is_ok());
        assert!(Lake::open(dir.path().join("plain").to_str().unwrap()).is_ok());
    }

    // The cloud backends are configured from the environment, so each test below runs its body
    // in a child process (this test binary, re-run on that one test) with exactly the variables
    // it names: nothing mutates this process's environment, and whatever store settings the
    // developer's shell has are not seen. Requests go to 127.0.0.1:1, which refuses at once, so
    // the error names the URL that would have been used; no network is needed.

    /// True inside the child. In the parent: runs `test` in a child with `vars`, asserts it passed.
    fn in_child(test: &str, vars: &[(&str, &str)]) -> bool {
        const MARK: &str = "ETL_LAKE_TEST_CHILD";
        if std::env::var_os(MARK).is_some() {
            return true;
        }
        let name = format!("{}::{test}", module_path!().split_once("::").map_or(module_path!(), |(_, m)| m));
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"]).env(MARK, "1");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            let store_var = ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_", "ETL_STORE_"].iter().any(|p| k.starts_with(p))
                || ["SERVICE_ACCOUNT", "STORAGE_EMULATOR_HOST", "MSI_ENDPOINT", "IDENTITY_ENDPOINT"].contains(&k.as_str());
            if store_var {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(vars.iter().copied());
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("1 passed"), "{name} with {vars:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        false
    }

    /// The error of a create-only put of `key` into `lake` (whose endpoint refuses connections).
    async fn refused_put(lake: &Lake, key: &str) -> String {
        let t0 = std::time::Instant::now();
        let e = lake.put_create(key, Bytes::from_static(b"x")).await.expect_err("the endpoint should refuse");
        assert!(t0.elapsed() < std::time::Duration::from_secs(30), "took {:?}", t0.elapsed());
        let e = e.to_string();
        // "builder error" is reqwest refusing an http:// URL: plain HTTP was not allowed.
        assert!(e.contains("error sending request") && !e.contains("builder error"), "{e}");
        e
    }

    const KEY: &str = "k/v.json";

    #[tokio::test]
    async fn s3_endpoint_region_credentials_and_retries_come_from_aws_env() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "eu-west-3"),
            ("ETL_STORE_MAX_RETRIES", "1"),
        ];
        if !in_child("s3_endpoint_region_credentials_and_retries_come_from_aws_env", &vars) {
            return;
        }
        let lake = Lake::open("s3://etl/runs/a/").unwrap();
        let debug = format!("{:?}", lake.store());
        assert!(debug.contains("AmazonS3") && debug.contains("region: \"eu-west-3\""), "{debug}");
        // Create-only puts send If-None-Match: * (object_store 0.13's default).
        assert!(debug.contains("conditional_put: ETagMatch"), "{debug}");
        let e = refused_put(&lake, KEY).await;
        // Path style (bucket in the path, not the host), prefix applied, one retry.
        assert!(e.contains("PUT http://127.0.0.1:1/etl/runs/a/k/v.json"), "{e}");
        assert!(e.contains("after 1 retries, max_retries: 1"), "{e}");
    }

    #[tokio::test]
    async fn s3_endpoint_alias_and_an_explicit_allow_http_are_respected() {
        let vars = [("AWS_ENDPOINT", "http://127.0.0.1:1"), ("AWS_ALLOW_HTTP", "false"), ("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
        if !in_child("s3_endpoint_alias_and_an_explicit_allow_http_are_respected", &vars) {
            return;
        }
        let lake = Lake::open("s3a://etl").unwrap();
        let e = lake.put_create(KEY, Bytes::from_static(b"x")).await.unwrap_err().to_string();
        assert!(e.contains("PUT http://127.0.0.1:1/etl/k/v.json") && e.contains("builder error"), "{e}");
    }

    #[tokio::test]
    async fn az_emulator_from_azure_env() {
        let vars = [("AZURE_STORAGE_USE_EMULATOR", "true"), ("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:1"), ("ETL_STORE_MAX_RETRIES", "0")];
        if !in_child("az_emulator_from_azure_env", &vars) {
            return;
        }
        let lake = Lake::open("az://etl/runs/b").unwrap();
        assert!(format!("{:?}", lake.store()).contains("account: \"devstoreaccount1\""), "{:?}", lake.store());
        let e = refused_put(&lake, KEY).await;
        assert!(e.contains("PUT http://127.0.0.1:1/devstoreaccount1/etl/runs/b/k/v.json"), "{e}");
        assert!(!e.contains("retries"), "ETL_STORE_MAX_RETRIES=0 still retried: {e}");
    }

    #[tokio::test]
    async fn az_account_key_and_endpoint_from_azure_env() {
        let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
        let vars = [
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", key),
            ("AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:1/acct"),
            ("ETL_STORE_MAX_RETRIES", "0"),
        ];
        if !in_child("az_account_key_and_endpoint_from_azure_env", &vars) {
            return;
        }
        let lake = Lake::open("azure://data/lake").unwrap();
        let e = refused_put(&lake, KEY).await;
        assert!(e.contains("PUT http://127.0.0.1:1/acct/data/lake/k/v.json"), "{e}");
    }

    #[test]
    fn az_without_an_account_and_bad_retry_settings_are_url_errors() {
        if !in_child("az_without_an_account_and_bad_retry_settings_are_url_errors", &[]) {
            return;
        }
        let e = Lake::open("az://etl").unwrap_err().to_string();
        assert!(e.contains("az://etl") && e.to_lowercase().contains("account"), "{e}");
        // Only this child process (running this one test) sees the change.
        std::env::set_var("ETL_STORE_MAX_RETRIES", "many");
        let e = Lake::open("s3://etl").unwrap_err().to_string();
        assert!(e.contains("ETL_STORE_MAX_RETRIES=\"many\""), "{e}");
        assert!(Lake::open(tempfile::tempdir().unwrap().path().to_str().unwrap()).is_ok(), "retries do not matter for a directory");
    }

    #[tokio::test]
    async fn gs_service_account_key_with_emulator_base_url() {
        let key = r#"{"gcs_base_url":"http://127.0.0.1:1","disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#;
        let vars = [("GOOGLE_SERVICE_ACCOUNT_KEY", key), ("ETL_STORE_MAX_RETRIES", "0")];
        if !in_child("gs_service_account_key_with_emulator_base_url", &vars) {
            return;
        }
        let lake = Lake::open("gs://etl/runs/c").unwrap();
        assert!(format!("{:?}", lake.store()).contains("GoogleCloudStorage"), "{:?}", lake.store());
        let e = refused_put(&lake, KEY).await;
        // The GCS client percent-encodes the whole object name, slashes and dots included.
        assert!(e.contains("PUT http://127.0.0.1:1/etl/runs%2Fc%2Fk%2Fv%2Ejson"), "{e}");
    }

    #[tokio::test]
    async fn gs_storage_emulator_host_needs_no_credentials() {
        let vars = [("STORAGE_EMULATOR_HOST", "127.0.0.1:1"), ("ETL_STORE_MAX_RETRIES", "0")];
        if !in_child("gs_storage_emulator_host_needs_no_credentials", &vars) {
            return;
        }
        let lake = Lake::open("gs://etl").unwrap();
        let e = refused_put(&lake, KEY).await;
        assert!(e.contains("PUT http://127.0.0.1:1/etl/k%2Fv%2Ejson"), "{e}");
    }

    #[test]
    fn gs_with_a_malformed_service_account_key_is_a_url_error() {
        if !in_child("gs_with_a_malformed_service_account_key_is_a_url_error", &[("GOOGLE_SERVICE_ACCOUNT_KEY", "{not json")]) {
            return;
        }
        let e = Lake::open("gs://etl/x").unwrap_err();
        assert!(matches!(e, LakeError::Url { .. }) && e.to_string().contains("gs://etl/x"), "{e}");
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
