//! `etl` against object-store emulators, configured the way each cloud's own tooling is: S3 on
//! moto (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) and
//! Azure Blob on Azurite (`AZURE_STORAGE_USE_EMULATOR` + `AZURITE_BLOB_STORAGE_URL`, or
//! `AZURE_STORAGE_ACCOUNT_NAME`/`_KEY` + `AZURE_STORAGE_ENDPOINT`). Plain HTTP is not switched on
//! explicitly: `etl` allows it because the endpoint is `http://`.
//!
//! The emulators come from `scripts/emulators.sh start azurite s3`; their settings are read from
//! `ETL_TEST_S3_*` / `ETL_TEST_AZURITE_*` (`scripts/emulators.sh env`, exported by
//! `scripts/test.sh`). Without them these tests fail, they do not skip. GCS has no emulator that
//! accepts object_store's uploads here, so it has no test in this file; its configuration is
//! unit-tested in `src/lake.rs`.

use crate::common::*;
use etl::lake::{Created, Lake};
use std::process::Stdio;
use std::time::Duration;

/// One emulated store: the URL of its bucket/container and the environment that reaches it.
struct Backend {
    name: &'static str,
    base: String,
    env: Vec<(String, String)>,
}

impl Backend {
    /// A fresh, unique lake URL in this store.
    fn lake(&self, what: &str) -> String {
        format!("{}/it/{}", self.base, unique_topic(what))
    }
}

fn need(var: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{var} is not set: start the emulators with `scripts/emulators.sh start azurite s3` and \
             `export $(scripts/emulators.sh env)` (or run `scripts/test.sh`)"
        )
    })
}

/// Panics unless something listens at `url`'s host:port.
fn reachable(var: &str, url: &str) {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("{var}={url:?} is not a URL: {e}"));
    let addr = format!("{}:{}", u.host_str().unwrap_or_default(), u.port_or_known_default().unwrap_or(80));
    let ok = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    assert!(ok, "{var}={url}: nothing listens at {addr}; is the emulator running? (`scripts/emulators.sh status`)");
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// moto, with the standard AWS variables.
fn s3() -> Backend {
    let endpoint = need("ETL_TEST_S3_ENDPOINT");
    reachable("ETL_TEST_S3_ENDPOINT", &endpoint);
    let env = kv(&[
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_REGION", &need("ETL_TEST_S3_REGION")),
        ("AWS_ACCESS_KEY_ID", &need("ETL_TEST_S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", &need("ETL_TEST_S3_SECRET_ACCESS_KEY")),
    ]);
    Backend { name: "s3", base: format!("s3://{}", need("ETL_TEST_S3_BUCKET")), env }
}

/// Azurite through object_store's emulator switch (`AZURE_STORAGE_USE_EMULATOR`).
fn azurite() -> Backend {
    let endpoint = need("ETL_TEST_AZURITE_ENDPOINT"); // http://host:port/<account>
    reachable("ETL_TEST_AZURITE_ENDPOINT", &endpoint);
    let account = need("ETL_TEST_AZURITE_ACCOUNT");
    let blob_url = endpoint.trim_end_matches('/').strip_suffix(&format!("/{account}")).unwrap_or_else(|| {
        panic!("ETL_TEST_AZURITE_ENDPOINT={endpoint} does not end in the account name {account}")
    });
    let env = kv(&[
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", blob_url),
        ("AZURE_STORAGE_ACCOUNT_NAME", &account),
        ("AZURE_STORAGE_ACCOUNT_KEY", &need("ETL_TEST_AZURITE_KEY")),
    ]);
    Backend { name: "azurite", base: format!("az://{}", need("ETL_TEST_AZURITE_CONTAINER")), env }
}

/// Azurite as any Azure account reached at an explicit endpoint (`AZURE_STORAGE_ENDPOINT`).
fn azurite_endpoint() -> Backend {
    let endpoint = need("ETL_TEST_AZURITE_ENDPOINT");
    reachable("ETL_TEST_AZURITE_ENDPOINT", &endpoint);
    let env = kv(&[
        ("AZURE_STORAGE_ACCOUNT_NAME", &need("ETL_TEST_AZURITE_ACCOUNT")),
        ("AZURE_STORAGE_ACCOUNT_KEY", &need("ETL_TEST_AZURITE_KEY")),
        ("AZURE_STORAGE_ENDPOINT", &endpoint),
    ]);
    Backend { name: "azurite-endpoint", base: format!("azure://{}", need("ETL_TEST_AZURITE_CONTAINER")), env }
}

fn verify_json(b: &Backend, lake: &str, private: &std::path::Path) -> (bool, serde_json::Value) {
    let o = etl_env(&["verify", "--lake", lake, "--private-key", private.to_str().unwrap(), "--format", "json"], &b.env);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{}: verify printed no JSON ({e}): {}", b.name, String::from_utf8_lossy(&o.stderr)));
    (o.status.success(), v)
}

// ------------------------------------------------------------------ raw → verify → cat

async fn lands_verifies_and_cats_exactly_once(b: Backend) {
    let topic = unique_topic(&format!("be-once-{}", b.name));
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, privk) = keys();
    let lake = b.lake("once");
    let r = raw_ok_env(&topic, &lake, &pubk, &["--object-records", "1000"], &b.env);
    assert_eq!(r["records"].as_u64(), Some(sent), "{r}");
    assert!(r["objects_written"].as_u64().unwrap() >= 13, "{r}");
    assert!(r["partitions"].as_array().unwrap().iter().all(|p| p["error"].is_null() && p["end_offset"] == p["high_watermark"]), "{r}");

    let (ok, v) = verify_json(&b, &lake, &privk);
    assert!(ok, "{}: {v}", b.name);
    assert_eq!(v["records"].as_u64(), Some(sent), "{v}");
    assert_eq!(v["objects"], r["objects_written"], "{v}");
    let truth = kafka_truth(&topic);
    assert_eq!(truth.len() as u64, sent);
    assert_eq!(lake_contents_env(&lake, &topic, &privk, &b.env), truth, "{}: lake differs from Kafka", b.name);

    // `etl cat` of one object by its key, and the stored run report is readable.
    let one = format!("raw/{topic}/partition=2/00000000000000000000-00000000000000000999.frames.zz.enc");
    let out = etl_ok_env(&["cat", "--lake", &lake, "--private-key", privk.to_str().unwrap(), &one], &b.env);
    assert_eq!(out.lines().count(), 1000, "{}: cat {one}", b.name);

    // A rerun without new data writes nothing.
    let r2 = raw_ok_env(&topic, &lake, &pubk, &["--object-records", "1000"], &b.env);
    assert_eq!((r2["records"].as_u64(), r2["objects_written"].as_u64()), (Some(0), Some(0)), "{r2}");
    let (ok, v2) = verify_json(&b, &lake, &privk);
    assert!(ok && v2["objects"] == v["objects"], "{v2}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_raw_lands_verifies_and_cats_exactly_once() {
    lands_verifies_and_cats_exactly_once(s3()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azurite_raw_lands_verifies_and_cats_exactly_once() {
    lands_verifies_and_cats_exactly_once(azurite()).await;
}

// ------------------------------------------------------------------ SIGKILL + rerun

async fn sigkill_then_rerun_lands_everything_once(b: Backend) {
    let topic = unique_topic(&format!("be-kill-{}", b.name));
    create_topic(&topic, 3).await;
    produce_samples(&topic);
    let (pubk, privk) = keys();
    let truth = kafka_truth(&topic);
    for point in ["record:700", "after-claim:3", "after-object:4"] {
        let lake = b.lake("kill");
        let args = raw_args(&topic, &lake, &pubk, &["--object-records", "500"]);
        assert!(kill_at_point_env(&args, point, &b.env), "{}: never reached {point}", b.name);
        if point.starts_with("after-claim") {
            let (ok, v) = verify_json(&b, &lake, &privk);
            assert!(!ok && v["errors"].to_string().contains("claimed but missing"), "{}: after a kill at {point}: {v}", b.name);
        }
        let r = raw_ok_env(&topic, &lake, &pubk, &["--object-records", "500"], &b.env);
        assert!(r["partitions"].as_array().unwrap().iter().all(|p| p["error"].is_null()), "{r}");
        if point.starts_with("after-claim") {
            let repaired: u64 = r["partitions"].as_array().unwrap().iter().map(|p| p["objects_repaired"].as_u64().unwrap_or(0)).sum();
            assert!(repaired >= 1, "{}: the claimed range was not repaired: {r}", b.name);
        }
        let (ok, v) = verify_json(&b, &lake, &privk);
        assert!(ok, "{}: after kill at {point}: {v}", b.name);
        assert_eq!(lake_contents_env(&lake, &topic, &privk, &b.env), truth, "{}: after kill at {point}", b.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_sigkill_at_crash_points_then_rerun_lands_everything_once() {
    sigkill_then_rerun_lands_everything_once(s3()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azurite_sigkill_at_crash_points_then_rerun_lands_everything_once() {
    sigkill_then_rerun_lands_everything_once(azurite()).await;
}

// ------------------------------------------------------------------ concurrent runs

async fn concurrent_runs_land_exactly_once(b: Backend) {
    let topic = unique_topic(&format!("be-conc-{}", b.name));
    create_topic(&topic, 3).await;
    produce_samples(&topic);
    let (pubk, privk) = keys();
    let truth = kafka_truth(&topic);
    let mut total_adopted = 0;
    for (round, size) in ["200", "333"].into_iter().enumerate() {
        let lake = b.lake("conc");
        let args = raw_args(&topic, &lake, &pubk, &["--object-records", size, "--format", "json", "--workers", "1"]);
        let children: Vec<_> = (0..3).map(|_| etl_command(&args, &b.env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
        let (mut written, mut adopted) = (0, 0);
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}: {}", b.name, String::from_utf8_lossy(&o.stderr));
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            written += r["objects_written"].as_u64().unwrap();
            adopted += r["partitions"].as_array().unwrap().iter().map(|p| p["ranges_adopted"].as_u64().unwrap()).sum::<u64>();
        }
        eprintln!("{} round {round}: {written} objects written, {adopted} ranges adopted from other runs", b.name);
        total_adopted += adopted;
        let (ok, v) = verify_json(&b, &lake, &privk);
        assert!(ok, "{}: {v}", b.name);
        // Each object was reported as written by exactly one run: create-only held.
        assert_eq!(v["objects"].as_u64(), Some(written), "{}: runs overwrote each other's objects: {v}", b.name);
        assert_eq!(lake_contents_env(&lake, &topic, &privk, &b.env), truth, "{}", b.name);
    }
    assert!(total_adopted > 0, "{}: the runs never overlapped; concurrency was not exercised", b.name);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_concurrent_runs_land_exactly_once() {
    concurrent_runs_land_exactly_once(s3()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azurite_concurrent_runs_land_exactly_once() {
    concurrent_runs_land_exactly_once(azurite()).await;
}

// ------------------------------------------------------------------ create-only, in process

/// `Lake::open` reads the process environment, so the in-process tests run in a child (this
/// test binary, re-run on one test) with the store's variables; the parent's stay untouched.
/// True inside the child.
fn in_child(test: &str, b: &Backend) -> bool {
    const MARK: &str = "ETL_IT_BACKEND_CHILD";
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    let name = format!("{}::{test}", module_path!().split_once("::").map_or(module_path!(), |(_, m)| m));
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"]).env(MARK, &b.base);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"].iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(b.env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{name} ({}) failed:\n{stdout}\n{}", b.name, String::from_utf8_lossy(&out.stderr));
    false
}

async fn create_only_is_honoured(b: Backend) {
    let lake = Lake::open(&b.lake("create")).unwrap();
    let key = "raw/t/_claims/partition=0/00000000000000000000.json";
    assert_eq!(lake.put_create(key, "first".into()).await.unwrap(), Created::New, "{}", b.name);
    assert_eq!(lake.put_create(key, "second".into()).await.unwrap(), Created::Existed, "{}", b.name);
    assert_eq!(lake.get(key).await.unwrap(), "first", "{}: a create-only put overwrote", b.name);
    assert_eq!(lake.list("raw/t").await.unwrap(), vec![(key.to_string(), 5)]);

    // Racing creates of one key: exactly one wins, and its bytes are what is stored.
    let key = "raw/t/_claims/partition=0/00000000000000000500.json";
    let results = futures::future::join_all((0..8).map(|i| {
        let lake = lake.clone();
        async move { (i, lake.put_create(key, format!("writer {i}").into()).await.unwrap()) }
    }))
    .await;
    let winners: Vec<_> = results.iter().filter(|(_, c)| *c == Created::New).map(|(i, _)| *i).collect();
    assert_eq!(winners.len(), 1, "{}: {results:?}", b.name);
    assert_eq!(lake.get(key).await.unwrap(), format!("writer {}", winners[0]), "{}", b.name);
}

#[tokio::test]
async fn s3_create_only_put_is_honoured() {
    let b = s3();
    if in_child("s3_create_only_put_is_honoured", &b) {
        create_only_is_honoured(b).await;
    }
}

#[tokio::test]
async fn azurite_create_only_put_is_honoured() {
    let b = azurite();
    if in_child("azurite_create_only_put_is_honoured", &b) {
        create_only_is_honoured(b).await;
    }
}

#[tokio::test]
async fn azurite_via_account_endpoint_create_only_put_is_honoured() {
    let b = azurite_endpoint();
    if in_child("azurite_via_account_endpoint_create_only_put_is_honoured", &b) {
        create_only_is_honoured(b).await;
    }
}

// ------------------------------------------------------------------ the whole pipeline

/// produce → raw → standard → reduce → query on one backend; the books balance and a rerun of
/// every stage is a no-op.
async fn whole_pipeline(b: Backend) {
    let topic = unique_topic(&format!("be-pipe-{}", b.name));
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, privk) = keys();
    let lake = b.lake("pipe");
    let pk = privk.to_str().unwrap();
    raw_ok_env(&topic, &lake, &pubk, &["--object-records", "3000"], &b.env);
    let s: serde_json::Value = serde_json::from_str(&etl_ok_env(&["standard", "--lake", &lake, "--private-key", pk, "--format", "json"], &b.env)).unwrap();
    assert_eq!(s["rows_written"].as_u64().unwrap() + s["rejects"].as_u64().unwrap(), sent, "{}: {s}", b.name);
    let r: serde_json::Value = serde_json::from_str(&etl_ok_env(&["reduce", "--lake", &lake, "--format", "json"], &b.env)).unwrap();
    assert_eq!(r["trip_summaries"], 41, "{}: {r}", b.name);
    let out = etl_ok_env(&["query", "--lake", &lake, "--format", "csv", "select (select count(*) from breadcrumbs) as rows, (select count(*) from rejects) as rejects, (select count(*) from trips) as trips, (select count(*) from archive_breadcrumbs) as archived"], &b.env);
    let line: Vec<u64> = out.lines().nth(1).unwrap().split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(line[0] + line[1], sent, "{}: {out}", b.name);
    assert_eq!(line[2], 41);
    assert_eq!(line[3], r["rows_after"].as_u64().unwrap());
    let rec = etl_ok_env(&["query", "--lake", &lake, "--format", "json", "--name", "raw_standard_reconciliation"], &b.env);
    assert_eq!(rec.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["accounted"].as_u64().unwrap()).sum::<u64>(), sent);
    let (ok, v) = verify_json(&b, &lake, &privk);
    assert!(ok, "{}: {v}", b.name);
    assert_eq!(v["standard"]["total"]["raw_records"].as_u64(), Some(sent));
    // Reruns change nothing.
    let s2: serde_json::Value = serde_json::from_str(&etl_ok_env(&["standard", "--lake", &lake, "--private-key", pk, "--format", "json"], &b.env)).unwrap();
    assert_eq!(s2["raw_objects"], 0);
    let r2: serde_json::Value = serde_json::from_str(&etl_ok_env(&["reduce", "--lake", &lake, "--format", "json"], &b.env)).unwrap();
    assert!(r2["version"].is_null(), "{r2}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_whole_pipeline() {
    whole_pipeline(s3()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azurite_whole_pipeline() {
    whole_pipeline(azurite()).await;
}

// ------------------------------------------------------------------ transient failures

/// S3 behind a proxy that answers every 4th request with 503 — half of them before the store saw
/// the request, half after it acted on it. Retries must neither lose nor duplicate anything.
#[tokio::test(flavor = "multi_thread")]
async fn s3_transient_5xx_are_retried_without_loss_or_duplicates() {
    let b = s3();
    let upstream = b.env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").unwrap().1.clone();
    let d = tempfile::tempdir().unwrap();
    let port_file = d.path().join("port");
    let proxy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flaky_proxy.py");
    let mut child = std::process::Command::new("python3").arg(&proxy).arg(&upstream).arg(&port_file).arg("4").spawn().unwrap();
    let port = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_to_string(&port_file).ok()
        })
        .expect("proxy did not start");
    let mut env: Vec<(String, String)> = b.env.iter().filter(|(k, _)| k != "AWS_ENDPOINT_URL").cloned().collect();
    env.push(("AWS_ENDPOINT_URL".into(), format!("http://127.0.0.1:{}", port.trim())));
    let flaky = Backend { name: "s3-flaky", base: b.base.clone(), env };

    let topic = unique_topic("be-flaky");
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, privk) = keys();
    let lake = flaky.lake("flaky");
    let r = raw_ok_env(&topic, &lake, &pubk, &["--object-records", "500"], &flaky.env);
    assert!(r["partitions"].as_array().unwrap().iter().all(|p| p["error"].is_null()), "{r}");
    etl_ok_env(&["standard", "--lake", &lake, "--private-key", privk.to_str().unwrap()], &flaky.env);
    let stats = std::fs::read_to_string(d.path().join("port.stats")).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let n: Vec<u64> = stats.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(n.len() == 2 && n[0] > 5 && n[1] > 5, "too few failures injected: {stats:?}");
    // Through the real store (no proxy): exactly what Kafka holds, and the books balance.
    assert_eq!(lake_contents_env(&lake, &topic, &privk, &b.env), kafka_truth(&topic));
    let (ok, v) = verify_json(&b, &lake, &privk);
    assert!(ok, "{v}");
    assert_eq!(v["standard"]["total"]["raw_records"].as_u64(), Some(sent));
}
