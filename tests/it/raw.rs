//! `etl raw` against a real Kafka broker: exactly once, crash-safe, concurrent-safe, no
//! disturbance of other consumers, and clear errors.

use crate::common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lake_dir(name: &str) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join(name).display().to_string();
    (d, lake)
}

fn verify_json(lake: &str, private: &std::path::Path) -> (bool, serde_json::Value) {
    let o = etl(&["verify", "--lake", lake, "--private-key", private.to_str().unwrap(), "--format", "json"]);
    (o.status.success(), serde_json::from_slice(&o.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_land_exactly_once_and_verify() {
    let topic = unique_topic("raw-once");
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    assert_eq!(sent, 5385 + 161 + 7406);
    let (pubk, privk) = keys();
    let (_d, lake) = lake_dir("lake");
    let report = raw_ok(&topic, &lake, &pubk, &["--object-records", "1000"]);
    assert_eq!(report["records"].as_u64(), Some(sent));
    assert!(report["objects_written"].as_u64().unwrap() >= 13, "{report}");
    assert!(report["compression_ratio"].as_f64().unwrap() > 5.0, "{report}");
    let parts = report["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for p in parts {
        assert_eq!(p["end_offset"], p["high_watermark"]);
        assert!(p["error"].is_null());
    }
    // The report is stored in the lake.
    let key = report["report_key"].as_str().unwrap();
    assert!(std::path::Path::new(&lake).join(key).exists());

    let truth = kafka_truth(&topic);
    assert_eq!(truth.len() as u64, sent);
    assert_eq!(lake_contents(&lake, &topic, &privk), truth, "lake differs from Kafka");

    let (ok, v) = verify_json(&lake, &privk);
    assert!(ok, "{v}");
    assert_eq!(v["records"].as_u64(), Some(sent));
    assert_eq!(v["objects"], report["objects_written"]);
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    // Keys are deterministic from the data: topic, partition, zero-padded offset range.
    let files = lake_files(std::path::Path::new(&lake));
    assert!(files.iter().any(|f| f.starts_with(&format!("raw/{topic}/partition=")) && f.ends_with("-00000000000000000999.frames.zz.enc")), "{files:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_without_new_data_writes_nothing_then_lands_only_new_messages() {
    let topic = unique_topic("raw-rerun");
    create_topic(&topic, 3).await;
    let first = produce_samples(&topic);
    let (pubk, privk) = keys();
    let (_d, lake) = lake_dir("lake");
    let r1 = raw_ok(&topic, &lake, &pubk, &[]);
    assert_eq!(r1["records"].as_u64(), Some(first));
    let before = lake_files(std::path::Path::new(&lake));

    let r2 = raw_ok(&topic, &lake, &pubk, &[]);
    assert_eq!(r2["records"].as_u64(), Some(0));
    assert_eq!(r2["objects_written"].as_u64(), Some(0));
    assert_eq!(lake_files(std::path::Path::new(&lake)), before, "a run with no new data wrote something");

    let second = produce_samples(&topic);
    let r3 = raw_ok(&topic, &lake, &pubk, &[]);
    assert_eq!(r3["records"].as_u64(), Some(second), "{r3}");
    assert_eq!(lake_contents(&lake, &topic, &privk), kafka_truth(&topic));

    // --max-records bounds a run per partition; the next runs continue where it stopped.
    let third = produce_samples(&topic);
    let r4 = raw_ok(&topic, &lake, &pubk, &["--max-records", "1000"]);
    let landed = r4["records"].as_u64().unwrap();
    assert!(landed > 0 && landed <= 3000 && landed < third, "{r4}");
    let mut total = landed;
    for _ in 0..20 {
        let r = raw_ok(&topic, &lake, &pubk, &["--max-records", "1000"]);
        total += r["records"].as_u64().unwrap();
        if r["records"].as_u64() == Some(0) {
            break;
        }
    }
    assert_eq!(total, third);
    assert_eq!(lake_contents(&lake, &topic, &privk), kafka_truth(&topic));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_every_crash_point_then_rerun_lands_everything_once() {
    let topic = unique_topic("raw-kill");
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, privk) = keys();
    let truth = kafka_truth(&topic);
    for point in ["record:700", "after-claim:1", "after-claim:4", "after-object:1", "after-object:5"] {
        let (_d, lake) = lake_dir("lake");
        let args = raw_args(&topic, &lake, &pubk, &["--object-records", "500"]);
        assert!(kill_at_point(&args, point), "never reached {point}");
        if point.starts_with("after-claim") {
            // The interrupted run left a claim whose object is missing: verify says so.
            let (ok, v) = verify_json(&lake, &privk);
            assert!(!ok, "verify should report the missing object after a kill at {point}: {v}");
            assert!(v["errors"].to_string().contains("claimed but missing"), "{v}");
        }
        // Kill a second time at a random moment, then finish.
        let mut child = Command::new(etl_bin()).args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(30 + (sent % 97)));
        child.kill().unwrap();
        let _ = child.wait();
        let r = raw_ok(&topic, &lake, &pubk, &["--object-records", "500"]);
        assert!(r["partitions"].as_array().unwrap().iter().all(|p| p["error"].is_null()), "{r}");
        let (ok, v) = verify_json(&lake, &privk);
        assert!(ok, "after kill at {point}: {v}");
        assert_eq!(lake_contents(&lake, &topic, &privk), truth, "after kill at {point}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_never_write_the_same_offsets_twice() {
    let topic = unique_topic("raw-conc");
    create_topic(&topic, 3).await;
    produce_samples(&topic);
    produce_samples(&topic);
    let (pubk, privk) = keys();
    let truth = kafka_truth(&topic);
    let mut total_adopted = 0;
    for round in 0..2 {
        let (_d, lake) = lake_dir("lake");
        // Round 1 uses object sizes that do not divide evenly, so cut points differ from round 0.
        let size = if round == 0 { "200" } else { "333" };
        let args = raw_args(&topic, &lake, &pubk, &["--object-records", size, "--format", "json", "--workers", "1"]);
        let children: Vec<_> = (0..3)
            .map(|_| Command::new(etl_bin()).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        let mut written = 0;
        let mut adopted = 0;
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            written += r["objects_written"].as_u64().unwrap();
            adopted += r["partitions"].as_array().unwrap().iter().map(|p| p["ranges_adopted"].as_u64().unwrap()).sum::<u64>();
        }
        eprintln!("round {round}: {written} objects written, {adopted} ranges adopted from other runs");
        total_adopted += adopted;
        let objects = lake_files(std::path::Path::new(&lake)).iter().filter(|f| f.ends_with(".frames.zz.enc")).count() as u64;
        assert_eq!(written, objects, "two runs both claim to have written the same object");
        let (ok, v) = verify_json(&lake, &privk);
        assert!(ok, "{v}");
        assert_eq!(lake_contents(&lake, &topic, &privk), truth);
    }
    assert!(total_adopted > 0, "the runs never overlapped; the test did not exercise concurrency");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_consumer_groups_still_receive_every_message() {
    let topic = unique_topic("raw-groups");
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, _) = keys();
    let (_d, lake) = lake_dir("lake");
    let group = format!("etl-raw-{topic}");
    raw_ok(&topic, &lake, &pubk, &["--group-id", &group]);

    // The main pipeline's group, subscribing as usual, still gets everything.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("pipeline-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[&topic]).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < sent && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            seen.insert((m.partition(), m.offset()));
        }
    }
    assert_eq!(seen.len() as u64, sent);

    // etl raw committed what it landed to its own group, so lag tools show 0.
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", &group).create().unwrap();
    let md = probe.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition(&topic, p.id());
    }
    let committed = probe.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    for e in committed.elements() {
        let (_, hi) = probe.fetch_watermarks(&topic, e.partition(), Duration::from_secs(10)).unwrap();
        if hi > 0 {
            assert_eq!(e.offset(), rdkafka::Offset::Offset(hi), "partition {}", e.partition());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_gap_fails_by_default_and_is_recorded_then_skipped_on_request() {
    let topic = unique_topic("raw-gap");
    create_topic(&topic, 3).await;
    produce_samples(&topic);
    let (pubk, privk) = keys();
    // Pick a partition with data and delete its first 100 records, as retention would.
    let truth = kafka_truth(&topic);
    let p = truth.keys().next().unwrap().0;
    delete_records(&topic, p, 100).await;
    let (_d, lake) = lake_dir("lake");
    let o = etl(&raw_args(&topic, &lake, &pubk, &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("partition {p}")) && err.contains("retention gap") && err.contains("0..=99"), "{err}");
    let gap = format!("raw/{topic}/_gaps/partition={p}/00000000000000000000-00000000000000000099.json");
    assert!(std::path::Path::new(&lake).join(&gap).exists(), "gap not recorded");
    // Other partitions landed anyway.
    let landed = lake_contents(&lake, &topic, &privk);
    assert!(!landed.is_empty() && landed.keys().all(|(pp, _)| *pp != p));

    let r = raw_ok(&topic, &lake, &pubk, &["--on-gap", "skip"]);
    assert_eq!(r["partitions"].as_array().unwrap().iter().find(|x| x["partition"] == p).unwrap()["gap"], serde_json::json!([0, 99]));
    let (ok, v) = verify_json(&lake, &privk);
    assert!(ok, "{v}");
    assert_eq!(v["topics"][&topic][p.to_string()]["gaps"], serde_json::json!([[0, 99]]));
    assert_eq!(lake_contents(&lake, &topic, &privk), kafka_truth(&topic));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_tampering_truncation_and_unreachable_parts_fail_clearly() {
    let topic = unique_topic("raw-bad");
    create_topic(&topic, 3).await;
    produce_samples(&topic);
    let (pubk, privk) = keys();
    let (_, other_priv) = other_keys();
    let (_d, lake) = lake_dir("lake");
    raw_ok(&topic, &lake, &pubk, &["--object-records", "2000"]);
    let objects: Vec<String> = lake_files(std::path::Path::new(&lake)).into_iter().filter(|f| f.ends_with(".frames.zz.enc")).collect();
    assert!(objects.len() >= 3);

    let one_line = |o: &std::process::Output| {
        let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
        assert!(!o.status.success(), "expected failure");
        assert_eq!(e.lines().count(), 1, "expected one line of error, got:\n{e}");
        assert!(!e.contains("panicked"), "{e}");
        e
    };

    // Wrong private key: names the object and both key ids.
    let e = one_line(&etl(&["cat", "--lake", &lake, "--private-key", other_priv.to_str().unwrap(), &objects[0]]));
    assert!(e.contains(&objects[0]) && e.contains("encrypted for key"), "{e}");
    // Missing key files.
    let e = one_line(&etl(&["cat", "--lake", &lake, "--private-key", "/nonexistent/k.pem", &objects[0]]));
    assert!(e.contains("/nonexistent/k.pem"), "{e}");
    let e = one_line(&etl(&raw_args(&topic, &lake, std::path::Path::new("/nonexistent/p.pem"), &[]).iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(e.contains("/nonexistent/p.pem"), "{e}");
    // A public key where a private one is needed.
    let e = one_line(&etl(&["cat", "--lake", &lake, "--private-key", pubk.to_str().unwrap(), &objects[0]]));
    assert!(e.contains("private"), "{e}");

    // One flipped byte, and a truncated object.
    let flip = std::path::Path::new(&lake).join(&objects[1]);
    let mut b = std::fs::read(&flip).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x20;
    std::fs::write(&flip, &b).unwrap();
    let trunc = std::path::Path::new(&lake).join(&objects[2]);
    let b = std::fs::read(&trunc).unwrap();
    std::fs::write(&trunc, &b[..b.len() - 100]).unwrap();
    let e = one_line(&etl(&["cat", "--lake", &lake, "--private-key", privk.to_str().unwrap(), &objects[1]]));
    assert!(e.contains(&objects[1]) && e.contains("authentication failed"), "{e}");
    let (ok, v) = verify_json(&lake, &privk);
    assert!(!ok);
    let errs = v["errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2, "{v}");
    let named: Vec<&str> = errs.iter().map(|e| e["object"].as_str().unwrap()).collect();
    assert!(named.contains(&objects[1].as_str()) && named.contains(&objects[2].as_str()), "{v}");

    // Unreachable broker: quick, clear, names the address.
    let t0 = Instant::now();
    let args = ["raw", "--brokers", "127.0.0.1:1", "--topic", &topic, "--lake", &lake, "--public-key", pubk.to_str().unwrap()];
    let e = one_line(&etl(&args));
    assert!(e.contains("127.0.0.1:1"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(60));

    // Unwritable lake: a path below a regular file.
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad_lake = file.path().join("lake").display().to_string();
    let e = one_line(&etl(&raw_args(&topic, &bad_lake, &pubk, &[]).iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(e.contains("lake"), "{e}");
    // A missing topic.
    let e = one_line(&etl(&raw_args("no-such-topic-xyz", &lake, &pubk, &[]).iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(e.contains("no-such-topic-xyz") && e.contains("not found"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sharded_workers_split_a_six_partition_topic_and_land_it_exactly_once() {
    let topic = unique_topic("raw-shards");
    create_topic(&topic, 6).await;
    // Enough distinct keys that every partition gets data.
    let records: Vec<etl::produce::Record> = (0..6000)
        .map(|i| etl::produce::Record { key: Some(format!("veh-{}", i % 60).into_bytes()), payload: format!("{{\"VEHICLE_ID\":{},\"N\":{i}}}", i % 60).into_bytes() })
        .collect();
    etl::kafka::send(&brokers(), &topic, &records, Duration::from_secs(60)).unwrap();
    let (pubk, privk) = keys();
    let truth = kafka_truth(&topic);
    assert_eq!(truth.keys().map(|(p, _)| *p).collect::<std::collections::BTreeSet<_>>().len(), 6);

    // Three workers, as Cloud Run tasks 0..3 (CLOUD_RUN_TASK_INDEX/COUNT), started together.
    let (_d, lake) = lake_dir("lake");
    let args = raw_args(&topic, &lake, &pubk, &["--object-records", "300", "--format", "json"]);
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(etl_bin())
                .args(&args)
                .env("CLOUD_RUN_TASK_INDEX", i.to_string())
                .env("CLOUD_RUN_TASK_COUNT", "3")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut landed_by_worker = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let parts: Vec<i64> = r["partitions"].as_array().unwrap().iter().map(|p| p["partition"].as_i64().unwrap()).collect();
        landed_by_worker.push((parts, r["records"].as_u64().unwrap()));
    }
    // The work was split: each worker took two partitions, none twice.
    let mut all: Vec<i64> = landed_by_worker.iter().flat_map(|(p, _)| p.clone()).collect();
    all.sort();
    assert_eq!(all, vec![0, 1, 2, 3, 4, 5], "{landed_by_worker:?}");
    assert!(landed_by_worker.iter().all(|(p, n)| p.len() == 2 && *n > 0), "{landed_by_worker:?}");
    assert_eq!(landed_by_worker.iter().map(|(_, n)| n).sum::<u64>(), 6000);
    assert_eq!(lake_contents(&lake, &topic, &privk), truth);

    // Misconfigured workers (two think they are shard 0 of 2) are still exactly once.
    let (_d2, lake2) = lake_dir("lake");
    let shards = [("0", "2"), ("0", "2"), ("1", "2")];
    let children: Vec<_> = shards
        .iter()
        .map(|(i, n)| {
            let a = raw_args(&topic, &lake2, &pubk, &["--object-records", "300", "--shard-index", i, "--shard-count", n]);
            Command::new(etl_bin()).args(&a).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(lake_contents(&lake2, &topic, &privk), truth);
    let (ok, v) = verify_json(&lake2, &privk);
    assert!(ok, "{v}");
    // A bad shard setting is refused before anything runs.
    let o = etl(&raw_args(&topic, &lake2, &pubk, &["--shard-index", "3", "--shard-count", "3"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--shard-index"));
}

/// Keys (none, empty, binary, text), payloads (JSON, binary with newlines, empty, null: a
/// tombstone) and the producer's timestamps come back byte for byte, across object boundaries
/// that fall inside the consumer's batches.
#[tokio::test(flavor = "multi_thread")]
async fn keys_payloads_and_timestamps_land_byte_for_byte() {
    use base64::Engine as _;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let topic = unique_topic("raw-bytes");
    create_topic(&topic, 1).await;
    let n = 5000u32;
    let key = |i: u32| -> Option<Vec<u8>> {
        match i % 4 {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(vec![0xff, 0x00, b'\n', (i % 251) as u8]),
            _ => Some(format!("veh-{i}").into_bytes()),
        }
    };
    let payload = |i: u32| -> Option<Vec<u8>> {
        match i % 5 {
            0 | 3 => Some(format!("{{\"VEHICLE_ID\":{i},\"NOTE\":\"line\\nbreak\"}}").into_bytes()),
            1 => Some(vec![0x80, b'\n', 0x00, (i % 256) as u8, b'\n']),
            2 => Some(Vec::new()),
            _ => None,
        }
    };
    let ts = |i: u32| 1_670_832_000_000i64 + i as i64 * 1000;
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers()).set("linger.ms", "5").create().unwrap();
    for i in 0..n {
        let (k, v) = (key(i), payload(i));
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&topic).timestamp(ts(i));
        if let Some(v) = v.as_deref() {
            rec = rec.payload(v);
        }
        if let Some(k) = k.as_deref() {
            rec = rec.key(k);
        }
        while let Err((e, r)) = producer.send(rec) {
            assert!(matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)), "{e}");
            producer.poll(Duration::from_millis(10));
            rec = r;
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let (pubk, privk) = keys();
    let (_d, lake) = lake_dir("lake");
    let report = raw_ok(&topic, &lake, &pubk, &["--object-records", "777"]);
    assert_eq!(report["records"].as_u64(), Some(n as u64), "{report}");
    assert_eq!(report["objects_written"].as_u64(), Some(n.div_ceil(777) as u64), "{report}");

    let out = etl_ok(&["cat", "--lake", &lake, "--private-key", privk.to_str().unwrap(), &format!("raw/{topic}/")]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen = 0u32;
    for (i, line) in out.lines().enumerate() {
        let i = i as u32;
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["offset"].as_u64(), Some(i as u64), "{line}");
        assert_eq!(v["timestamp"].as_i64(), Some(ts(i)), "{line}");
        let got_key = match (v.get("key"), v.get("key_b64")) {
            (_, Some(k)) => Some(b64.decode(k.as_str().unwrap()).unwrap()),
            (Some(serde_json::Value::String(s)), None) => Some(s.clone().into_bytes()),
            _ => None,
        };
        assert_eq!(got_key, key(i), "key of offset {i}: {line}");
        let got_value = match (v.get("value"), v.get("value_b64")) {
            (_, Some(b)) => Some(b64.decode(b.as_str().unwrap()).unwrap()),
            (Some(serde_json::Value::String(s)), None) => Some(s.clone().into_bytes()),
            _ => None,
        };
        assert_eq!(got_value, payload(i), "payload of offset {i}: {line}");
        seen += 1;
    }
    assert_eq!(seen, n);
}
