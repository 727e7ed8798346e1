//! Shared helpers: the real broker, topics, the `etl` binary, keys, reading Kafka's truth.

#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The real broker's bootstrap address.
pub fn brokers() -> String {
    std::env::var("ETL_TEST_BROKERS").unwrap_or_else(|_| {
        panic!("ETL_TEST_BROKERS is not set: start a real broker with `scripts/kafka.sh start` (or run `scripts/test.sh`)")
    })
}

/// A topic name unique to this test run.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), chrono_ms(), N.fetch_add(1, Ordering::SeqCst))
}

fn chrono_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// Creates a topic on the real broker.
pub async fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let r = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .unwrap();
    for x in r {
        x.unwrap();
    }
    // Wait until metadata shows every partition with a leader.
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    for _ in 0..100 {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if md.topics().first().is_some_and(|t| t.error().is_none() && t.partitions().len() == partitions as usize && t.partitions().iter().all(|p| p.leader() >= 0)) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} did not become ready");
}

/// Deletes records before `before` in one partition (moves the low watermark, as retention does).
pub async fn delete_records(topic: &str, partition: i32, before: i64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(before)).unwrap();
    admin.delete_records(&tpl, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))).await.unwrap();
}

/// Path of the `etl` binary under test.
pub fn etl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_etl"))
}

/// Runs `etl ARGS` and returns its output.
pub fn etl(args: &[&str]) -> Output {
    Command::new(etl_bin()).args(args).env_remove("ETL_CONFIG").env_remove("ETL_LOG").output().unwrap()
}

/// Runs `etl ARGS`, asserting success; returns stdout.
pub fn etl_ok(args: &[&str]) -> String {
    let o = etl(args);
    assert!(o.status.success(), "etl {args:?} failed: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stdout).unwrap()
}

/// `etl ARGS` as a command with extra environment variables `envs` (e.g. a store's endpoint).
pub fn etl_command<S: AsRef<std::ffi::OsStr>>(args: &[S], envs: &[(String, String)]) -> Command {
    let mut c = Command::new(etl_bin());
    c.args(args).env_remove("ETL_CONFIG").env_remove("ETL_LOG").envs(envs.iter().map(|(k, v)| (k, v)));
    c
}

/// Runs `etl ARGS` with extra environment variables and returns its output.
pub fn etl_env<S: AsRef<std::ffi::OsStr>>(args: &[S], envs: &[(String, String)]) -> Output {
    etl_command(args, envs).output().unwrap()
}

/// Runs `etl ARGS` with extra environment variables, asserting success; returns stdout.
pub fn etl_ok_env<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S], envs: &[(String, String)]) -> String {
    let o = etl_env(args, envs);
    assert!(o.status.success(), "etl {args:?} failed: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stdout).unwrap()
}

/// A 2048-bit key pair made once per test binary with `etl keys generate`: (public, private).
pub fn keys() -> (PathBuf, PathBuf) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("etl-it-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        etl_ok(&["keys", "generate", "--dir", d.to_str().unwrap(), "--bits", "2048"]);
        d
    });
    (dir.join("etl-public.pem"), dir.join("etl-private.pem"))
}

/// A second, unrelated key pair.
pub fn other_keys() -> (PathBuf, PathBuf) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("etl-it-keys2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        etl_ok(&["keys", "generate", "--dir", d.to_str().unwrap(), "--bits", "2048"]);
        d
    });
    (dir.join("etl-public.pem"), dir.join("etl-private.pem"))
}

/// The repository's sample files.
pub fn sample_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "csv")))
        .collect();
    v.sort();
    v
}

/// (partition, offset) → payload bytes.
pub type Truth = BTreeMap<(i32, i64), Vec<u8>>;

/// Everything Kafka holds for `topic`, read straight from the broker.
pub fn kafka_truth(topic: &str) -> Truth {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", "etl-it-truth")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in md.topics()[0].partitions() {
        let (lo, hi) = c.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
        if hi > lo {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(lo)).unwrap();
            ends.insert(p.id(), hi);
        }
    }
    let mut truth = Truth::new();
    if ends.is_empty() {
        return truth;
    }
    c.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while ends.iter().any(|(p, hi)| !truth.contains_key(&(*p, hi - 1))) {
        assert!(std::time::Instant::now() < deadline, "timed out reading the truth of {topic}");
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            truth.insert((m.partition(), m.offset()), m.payload().unwrap_or_default().to_vec());
        }
    }
    truth
}

/// What the lake holds for `topic`, decrypted with `etl cat`: (partition, offset) → payload.
/// Panics on a duplicate (partition, offset).
pub fn lake_contents(lake: &str, topic: &str, private: &Path) -> Truth {
    lake_contents_env(lake, topic, private, &[])
}

/// [`lake_contents`] with extra environment variables for `etl cat` (a store's endpoint).
pub fn lake_contents_env(lake: &str, topic: &str, private: &Path, envs: &[(String, String)]) -> Truth {
    let out = etl_ok_env(&["cat", "--lake", lake, "--private-key", private.to_str().unwrap(), &format!("raw/{topic}/")], envs);
    let mut m = Truth::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let p = v["partition"].as_i64().unwrap() as i32;
        let o = v["offset"].as_i64().unwrap();
        let payload = match v.get("value") {
            Some(serde_json::Value::String(s)) => s.as_bytes().to_vec(),
            // A tombstone (null payload); `kafka_truth` reads it as empty too.
            Some(serde_json::Value::Null) => Vec::new(),
            _ => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(v["value_b64"].as_str().unwrap()).unwrap()
            }
        };
        assert!(m.insert((p, o), payload).is_none(), "duplicate record partition {p} offset {o} in the lake");
    }
    m
}

/// Produces the sample files to `topic` with `etl produce`; returns messages sent.
pub fn produce_samples(topic: &str) -> u64 {
    let mut args: Vec<String> = vec!["produce".into(), "--brokers".into(), brokers(), "--topic".into(), topic.into()];
    args.extend(sample_files().iter().map(|p| p.display().to_string()));
    let out = etl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let last = out.lines().last().unwrap();
    last.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Files in a lake directory (relative paths), sorted.
pub fn lake_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut v);
    }
    v.sort();
    v
}

/// `etl raw` arguments for the real broker.
pub fn raw_args(topic: &str, lake: &str, public: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["raw", "--brokers", &brokers(), "--topic", topic, "--lake", lake, "--public-key", public.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Runs `etl raw`, asserting success; returns the JSON report.
pub fn raw_ok(topic: &str, lake: &str, public: &Path, extra: &[&str]) -> serde_json::Value {
    raw_ok_env(topic, lake, public, extra, &[])
}

/// [`raw_ok`] with extra environment variables (a store's endpoint).
pub fn raw_ok_env(topic: &str, lake: &str, public: &Path, extra: &[&str], envs: &[(String, String)]) -> serde_json::Value {
    let mut args = raw_args(topic, lake, public, extra);
    args.extend(["--format".to_string(), "json".to_string()]);
    let out = etl_ok_env(&args, envs);
    serde_json::from_str(&out).unwrap()
}

/// Spawns `etl ARGS` with a crash point (`ETL_FAULT_POINT`); waits until it is there and
/// SIGKILLs it. False if the point was not reached within 60 s.
pub fn kill_at_point(args: &[String], point: &str) -> bool {
    kill_at_point_env(args, point, &[])
}

/// [`kill_at_point`] with extra environment variables (a store's endpoint).
pub fn kill_at_point_env(args: &[String], point: &str, envs: &[(String, String)]) -> bool {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = etl_command(args, envs).env("ETL_FAULT_POINT", point).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("ETL-FAULT-POINT") {
                let _ = tx.send(());
            }
        }
    });
    let reached = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    reached
}

/// Copies a directory tree (a local lake) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}
