//! `etl standard` end to end: real samples through a real broker, every encoding and kind of
//! garbage, crash safety, and other engines (DuckDB, pyarrow) reading the result.

use crate::common::*;
use arrow::array::AsArray;
use etl::standard::{read_parquet, rows_from_batch, Row};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn std_ok(lake: &str, private: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["standard", "--lake", lake, "--private-key", private.to_str().unwrap(), "--format", "json"];
    args.extend(extra);
    serde_json::from_str(&etl_ok(&args)).unwrap()
}

/// Live breadcrumbs rows and reject (topic, partition, offset, rule) of a lake, through the manifest.
async fn read_layer(lake: &str) -> (Vec<Row>, Vec<(String, i32, i64, String, String)>) {
    let l = etl::lake::Lake::open(lake).unwrap();
    let m = etl::table::Layer::new(l.clone(), "standard").latest().await.unwrap().expect("no standard manifest");
    let mut rows = Vec::new();
    for f in &m.tables["breadcrumbs"] {
        let date = chrono::NaiveDate::parse_from_str(f.partition.strip_prefix("service_date=").unwrap(), "%Y-%m-%d").unwrap();
        let mut file_rows = Vec::new();
        for b in read_parquet(l.get(&f.path).await.unwrap(), &f.path).unwrap() {
            file_rows.extend(rows_from_batch(&b, date).unwrap());
        }
        // Every file is in the order it declares: vehicle, trip, act_time.
        let key = |r: &Row| (r.bc.vehicle_id, r.bc.trip_id, r.bc.act_time);
        assert!(file_rows.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "{} is not sorted by vehicle, trip, act_time", f.path);
        rows.extend(file_rows);
    }
    let mut rejects = Vec::new();
    for f in m.tables.get("rejects").into_iter().flatten() {
        for b in read_parquet(l.get(&f.path).await.unwrap(), &f.path).unwrap() {
            let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
            let (t, rule, msg) = (s("kafka_topic"), s("rule"), s("message"));
            let p = b.column_by_name("kafka_partition").unwrap().as_primitive::<arrow::datatypes::Int32Type>().clone();
            let o = b.column_by_name("kafka_offset").unwrap().as_primitive::<arrow::datatypes::Int64Type>().clone();
            for i in 0..b.num_rows() {
                rejects.push((t.value(i).to_string(), p.value(i), o.value(i), rule.value(i).to_string(), msg.value(i).to_string()));
            }
        }
    }
    (rows, rejects)
}

/// Sorted, comparable form of a table's rows.
fn row_set(rows: &[Row]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    v.sort();
    v
}

/// Python from `scripts/pyenv.sh` (DuckDB + pyarrow from PyPI).
pub fn python() -> std::path::PathBuf {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pyenv.sh")).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "scripts/pyenv.sh failed");
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs a Python snippet with `args` in sys.argv[1:]; returns its stdout parsed as JSON.
pub fn py_json(code: &str, args: &[&str]) -> serde_json::Value {
    let o = Command::new(python()).arg("-c").arg(code).args(args).output().unwrap();
    assert!(o.status.success(), "python failed:\n{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON from python ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

async fn samples_lake(topic_prefix: &str) -> (tempfile::TempDir, String, String, u64) {
    let topic = unique_topic(topic_prefix);
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, _) = keys();
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake").display().to_string();
    raw_ok(&topic, &lake, &pubk, &["--object-records", "1500"]);
    (d, lake, topic, sent)
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_balance_per_partition_and_rerun_converts_nothing_twice() {
    let (_d, lake, topic, sent) = samples_lake("std-books").await;
    let (_, privk) = keys();
    let r = std_ok(&lake, &privk, &[]);
    assert_eq!(r["records_in"].as_u64(), Some(sent));
    assert_eq!(r["rows_written"].as_u64().unwrap() + r["rejects"].as_u64().unwrap(), sent, "{r}");
    // The one-trip CSV repeats 161 rows of the full-day CSV: they are duplicates, nothing else is rejected.
    assert_eq!(r["rejects_by_rule"], serde_json::json!({"duplicate": 161}), "{r}");
    assert_eq!(r["service_dates"], serde_json::json!(["2022-12-12", "2023-02-15"]));

    // Per partition and in total, reconciled by `etl verify`.
    let truth = kafka_truth(&topic);
    let o = etl(&["verify", "--lake", &lake, "--private-key", privk.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let std = &v["standard"];
    assert_eq!(std["total"]["raw_records"].as_u64(), Some(sent));
    for p in 0..3 {
        let in_kafka = truth.keys().filter(|(pp, _)| *pp == p).count() as u64;
        let b = &std["partitions"][format!("{topic}/{p}")];
        if in_kafka == 0 {
            assert!(b.is_null() || b["raw_records"] == 0);
            continue;
        }
        assert_eq!(b["raw_records"].as_u64(), Some(in_kafka), "{std}");
        assert_eq!(b["rows"].as_u64().unwrap() + b["rejects"].as_u64().unwrap(), in_kafka, "{std}");
    }

    let (rows, rejects) = read_layer(&lake).await;
    assert_eq!(rows.len() + rejects.len(), sent as usize);
    assert!(rejects.iter().all(|r| !r.3.is_empty() && !r.4.is_empty()));
    // Never both, never twice.
    let mut ids: Vec<(i32, i64)> = rows.iter().map(|r| (r.partition, r.offset)).chain(rejects.iter().map(|r| (r.1, r.2))).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), sent as usize);

    let before = lake_files(Path::new(&lake));
    let again = std_ok(&lake, &privk, &[]);
    assert_eq!(again["raw_objects"].as_u64(), Some(0));
    assert!(again["version"].is_null());
    assert_eq!(lake_files(Path::new(&lake)), before, "a rerun with nothing new changed the lake");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_whose_frames_miss_an_offset_is_reported_by_key_and_left_for_the_rerun() {
    let (_d, lake, _topic, sent) = samples_lake("std-badobj").await;
    let (pubk, privk) = keys();
    let (public, private) = (etl::keys::load_public(&pubk).unwrap(), etl::keys::load_private(&privk).unwrap());
    // One data object re-sealed without its last frame: it authenticates, but its key says more.
    let key = lake_files(Path::new(&lake)).into_iter().find(|k| k.ends_with(".frames.zz.enc")).expect("a raw data object");
    let path = Path::new(&lake).join(&key);
    let original = std::fs::read(&path).unwrap();
    let o = etl::verify::open_object(&key, &original, &private).unwrap();
    let frames: Vec<_> = o.frames[..o.frames.len() - 1]
        .iter()
        .map(|f| etl::frames::Frame { partition: f.partition, offset: f.offset, timestamp: f.timestamp, key: f.key.clone().map(|r| &o.plaintext[r]), payload: f.payload_in(&o.plaintext) })
        .collect();
    let plain = etl::frames::encode_all(&frames);
    std::fs::write(&path, etl::envelope::seal_bytes(&plain, &public, 5, etl::frames::CONTENT).unwrap().bytes).unwrap();
    let (last, held) = (o.frames.last().unwrap().offset, o.frames.len() as u64);

    let out = etl(&["standard", "--lake", &lake, "--private-key", privk.to_str().unwrap(), "--format", "json"]);
    assert!(!out.status.success(), "a run with an unreadable object must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&key) && stderr.contains(&format!("object ends at offset {}, key says {last}", last - 1)), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["raw_objects_failed"].as_u64(), Some(1), "{r}");
    assert_eq!(r["records_in"].as_u64(), Some(sent - held), "every other object is converted: {r}");

    // Put the object right: the rerun converts it, and only it.
    std::fs::write(&path, &original).unwrap();
    let again = std_ok(&lake, &privk, &[]);
    assert_eq!((again["raw_objects"].as_u64(), again["records_in"].as_u64()), (Some(1), Some(held)), "{again}");
    let (rows, rejects) = read_layer(&lake).await;
    assert_eq!((rows.len() + rejects.len()) as u64, sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_batches_compact_into_one_file_per_date_with_identical_contents() {
    let (d, lake, _topic, _) = samples_lake("std-compact").await;
    let (_, privk) = keys();
    let other = d.path().join("copy").display().to_string();
    copy_dir(Path::new(&lake), Path::new(&other));
    std_ok(&lake, &privk, &[]);
    let mut runs = 0;
    loop {
        let r = std_ok(&other, &privk, &["--max-objects", "1"]);
        if r["raw_objects"] == 0 {
            break;
        }
        runs += 1;
        assert!(runs < 50);
    }
    assert!(runs >= 4, "expected several one-object runs, got {runs}");
    // One run that spills every ~1000 rows to staging and merges at the end: the same tables.
    let spilled = d.path().join("spilled").display().to_string();
    copy_dir(Path::new(&lake), Path::new(&spilled));
    for e in std::fs::read_dir(Path::new(&spilled).join("standard")).unwrap() {
        std::fs::remove_dir_all(e.unwrap().path()).unwrap();
    }
    std_ok(&spilled, &privk, &["--chunk-rows", "1000"]);
    let (c, _) = read_layer(&spilled).await;
    let (a, ra) = read_layer(&lake).await;
    assert_eq!(row_set(&a), row_set(&c), "spilling changed the result");
    assert!(lake_files(Path::new(&spilled)).iter().all(|f| !f.contains("_staging")), "spill files left behind");
    let (b, rb) = read_layer(&other).await;
    assert_eq!(row_set(&a), row_set(&b));
    let (mut ra, mut rb) = (ra, rb);
    ra.sort();
    rb.sort();
    assert_eq!(ra.iter().map(|r| (r.1, r.2, &r.3)).collect::<Vec<_>>(), rb.iter().map(|r| (r.1, r.2, &r.3)).collect::<Vec<_>>());
    // No small-file swamp: exactly one data file per service date, and nothing else in the dirs.
    let files: Vec<String> = lake_files(Path::new(&other)).into_iter().filter(|f| f.starts_with("standard/breadcrumbs/")).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(lake_files(Path::new(&other)).iter().all(|f| !f.contains("_staging")));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_standard_then_rerun_gives_identical_tables() {
    let (d, lake, _topic, _) = samples_lake("std-kill").await;
    let (_, privk) = keys();
    let pristine = d.path().join("pristine");
    copy_dir(Path::new(&lake), &pristine);
    std_ok(&lake, &privk, &[]);
    let (want_rows, want_rejects) = read_layer(&lake).await;
    let want_rejects: Vec<_> = {
        let mut v: Vec<_> = want_rejects.iter().map(|r| (r.1, r.2, r.3.clone())).collect();
        v.sort();
        v
    };
    for (i, point) in ["before-commit", "after-commit", "after-publish"].iter().enumerate() {
        let l = d.path().join(format!("k{i}"));
        copy_dir(&pristine, &l);
        let l = l.display().to_string();
        let args: Vec<String> = ["standard", "--lake", &l, "--private-key", privk.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
        assert!(kill_at_point(&args, point), "never reached {point}");
        // Whatever a plain reader lists now is either nothing or a complete version.
        let listed: Vec<String> = lake_files(Path::new(&l)).into_iter().filter(|f| f.starts_with("standard/breadcrumbs/")).collect();
        assert!(listed.is_empty() || listed.len() == 2, "after kill at {point}: {listed:?}");
        std_ok(&l, &privk, &[]);
        let (rows, rejects) = read_layer(&l).await;
        let mut rj: Vec<_> = rejects.iter().map(|r| (r.1, r.2, r.3.clone())).collect();
        rj.sort();
        assert_eq!(row_set(&rows), row_set(&want_rows), "rows differ after kill at {point}");
        assert_eq!(rj, want_rejects, "rejects differ after kill at {point}");
        let files: Vec<String> = lake_files(Path::new(&l)).into_iter().filter(|f| f.starts_with("standard/breadcrumbs/") || f.starts_with("standard/rejects/")).collect();
        assert_eq!(files.len(), 3, "after kill at {point}: {files:?}");
        let o = etl(&["verify", "--lake", &l, "--private-key", privk.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // A random-moment kill too.
    let l = d.path().join("krand");
    copy_dir(&pristine, &l);
    let l = l.display().to_string();
    let mut child = Command::new(etl_bin()).args(["standard", "--lake", &l, "--private-key", privk.to_str().unwrap()]).stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(80));
    child.kill().unwrap();
    let _ = child.wait();
    std_ok(&l, &privk, &[]);
    assert_eq!(row_set(&read_layer(&l).await.0), row_set(&want_rows));
}

/// Every encoding seen in the wild, plus garbage: label, payload, expected rule (None = a row).
fn variety() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        ("numbers", b(r#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393162,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38670,"ACT_TIME":33160,"GPS_LONGITUDE":-122.867367,"GPS_LATITUDE":45.527212,"GPS_SATELLITES":12.0,"GPS_HDOP":0.8}"#), None),
        ("strings", b(r#"{"EVENT_NO_TRIP":"218393116","EVENT_NO_STOP":"218393163","OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":"2901","METERS":"38675","ACT_TIME":"33175","GPS_LONGITUDE":"-122.86737","GPS_LATITUDE":"45.527258","GPS_SATELLITES":"12","GPS_HDOP":"0.7"}"#), None),
        ("missing", b(r#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":null,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":"","ACT_TIME":33180,"GPS_LONGITUDE":"","GPS_LATITUDE":null,"GPS_SATELLITES":"","GPS_HDOP":null}"#), None),
        ("double", serde_json::to_vec(&serde_json::Value::String(r#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":218393164,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":2901,"METERS":38700,"ACT_TIME":33190,"GPS_LONGITUDE":-122.8674,"GPS_LATITUDE":45.5273,"GPS_SATELLITES":11,"GPS_HDOP":0.9}"#.into())).unwrap(), None),
        ("old14", b(r#"{"EVENT_NO_TRIP":"152542633","EVENT_NO_STOP":"152542642","OPD_DATE":"14-SEP-20","VEHICLE_ID":"3017","METERS":"1076","ACT_TIME":"21036","VELOCITY":"7","DIRECTION":"185","RADIO_QUALITY":"","GPS_LONGITUDE":"-122.577065","GPS_LATITUDE":"45.548583","GPS_SATELLITES":"11","GPS_HDOP":"0.7","SCHEDULE_DEVIATION":"-105"}"#), None),
        ("extra", b(r#"{"EVENT_NO_TRIP":1,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":77,"ACT_TIME":1000,"GPS_LONGITUDE":-122.6,"GPS_LATITUDE":45.5,"ROUTE_NUMBER":20,"FOO":"bar"}"#), None),
        ("dst", b(r#"{"EVENT_NO_TRIP":2,"OPD_DATE":"12-MAR-23","VEHICLE_ID":78,"ACT_TIME":36000,"GPS_LONGITUDE":-122.6,"GPS_LATITUDE":45.5}"#), None),
        ("past_midnight", b(r#"{"EVENT_NO_TRIP":3,"OPD_DATE":"15FEB2023:00:00:00","VEHICLE_ID":79,"ACT_TIME":90000,"GPS_LONGITUDE":-122.6,"GPS_LATITUDE":45.5}"#), None),
        ("outside", b(r#"{"EVENT_NO_TRIP":4,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":80,"ACT_TIME":100,"GPS_LONGITUDE":-74.0,"GPS_LATITUDE":40.7,"GPS_HDOP":12.5}"#), None),
        ("truncated", b(r#"{"EVENT_NO_TRIP":218393116,"EVENT_NO_STOP":2183"#), Some("invalid_json")),
        ("binary", vec![0x00, 0xff, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, b'\n', 0x80], Some("invalid_json")),
        ("empty", vec![], Some("empty_message")),
        ("array", b(r#"[{"EVENT_NO_TRIP":1}]"#), Some("missing_vehicle_id")),
        ("other_schema", b(r#"{"vehicle_number":"3649","leave_time":"63075","train":"4774","route_number":"47"}"#), Some("not_a_breadcrumb")),
        ("no_vehicle", b(r#"{"EVENT_NO_TRIP":5,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":100}"#), Some("missing_vehicle_id")),
        ("no_time", b(r#"{"EVENT_NO_TRIP":5,"VEHICLE_ID":5,"OPD_DATE":"12DEC2022:00:00:00"}"#), Some("bad_act_time")),
        ("bad_date", b(r#"{"EVENT_NO_TRIP":5,"VEHICLE_ID":5,"OPD_DATE":"sometime","ACT_TIME":100}"#), Some("bad_service_date")),
        ("dup_of_numbers", b(r#"{"EVENT_NO_TRIP":"218393116","EVENT_NO_STOP":"218393162","OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":"2901","METERS":"38670","ACT_TIME":"33160","GPS_LONGITUDE":"-122.867367","GPS_LATITUDE":"45.527212","GPS_SATELLITES":"12","GPS_HDOP":"0.8"}"#), Some("duplicate")),
        ("csv_line", b("259173279,259173350,15FEB2023:00:00:00,4223,194493,71279,-122.679572,45.517122,8,1.6\r\n"), None),
        ("csv_14", b(r#"152542633,152542642,"14-SEP-20",3017,1080,21041,7,185,,-122.577065,45.548583,11,0.7,-105"#), None),
        ("csv_header", b("EVENT_NO_TRIP,EVENT_NO_STOP,OPD_DATE,VEHICLE_ID,METERS,ACT_TIME,GPS_LONGITUDE,GPS_LATITUDE,GPS_SATELLITES,GPS_HDOP"), Some("not_a_breadcrumb")),
        ("gzip", gzip(br#"{"EVENT_NO_TRIP":6,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":81,"ACT_TIME":200,"GPS_LONGITUDE":-122.6,"GPS_LATITUDE":45.5}"#), None),
        ("bom", b("\u{feff}{\"EVENT_NO_TRIP\":7,\"OPD_DATE\":\"12DEC2022:00:00:00\",\"VEHICLE_ID\":82,\"ACT_TIME\":300}"), None),
        ("gzip_cut", gzip(b"{}")[..12].to_vec(), Some("invalid_json")),
        ("utf16", [&[0xff, 0xfe][..], &"{\"EVENT_NO_TRIP\":8,\"OPD_DATE\":\"12DEC2022:00:00:00\",\"VEHICLE_ID\":83,\"ACT_TIME\":400}".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()].concat(), None),
        ("csv_in_json_string", serde_json::to_vec("259173279,259173351,15FEB2023:00:00:00,4224,194493,71279,-122.679572,45.517122,8,1.6").unwrap(), None),
    ]
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn produce_payloads(topic: &str, payloads: &[Vec<u8>]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = rdkafka::config::ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    for pl in payloads {
        p.send(BaseRecord::<[u8], [u8]>::to(topic).payload(&pl[..]).key(&b"k"[..])).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_encoding_and_every_kind_of_garbage() {
    let topic = unique_topic("std-variety");
    create_topic(&topic, 1).await;
    let cases = variety();
    produce_payloads(&topic, &cases.iter().map(|c| c.1.clone()).collect::<Vec<_>>());
    let (pubk, privk) = keys();
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake").display().to_string();
    raw_ok(&topic, &lake, &pubk, &[]);
    let r = std_ok(&lake, &privk, &[]);
    assert_eq!(r["records_in"].as_u64(), Some(cases.len() as u64));
    let (rows, rejects) = read_layer(&lake).await;
    for (offset, (label, _, want)) in cases.iter().enumerate() {
        let offset = offset as i64;
        let row = rows.iter().find(|r| r.offset == offset);
        let rej = rejects.iter().find(|r| r.2 == offset);
        match want {
            None => assert!(row.is_some() && rej.is_none(), "{label}: expected a row, got reject {rej:?}"),
            Some(rule) => {
                assert!(row.is_none(), "{label}: expected reject {rule}, got a row");
                assert_eq!(rej.map(|r| r.3.as_str()), Some(*rule), "{label}");
            }
        }
    }
    let by = |o: i64| &rows.iter().find(|r| r.offset == o).unwrap().bc;
    assert_eq!(by(1).encoding, "json+string_numbers");
    assert_eq!((by(2).meters, by(2).latitude, by(2).hdop, by(2).stop_event_id), (None, None, None, None));
    assert!(by(2).flags.contains(&"missing_position"));
    assert!(by(3).encoding.contains("double_encoded"));
    assert_eq!((by(4).velocity, by(4).direction, by(4).radio_quality, by(4).schedule_deviation), (Some(7.0), Some(185.0), None, Some(-105)));
    assert_eq!(by(4).service_date.to_string(), "2020-09-14");
    let extra: serde_json::Value = serde_json::from_str(by(5).extra.as_deref().unwrap()).unwrap();
    assert_eq!(extra, serde_json::json!({"ROUTE_NUMBER": 20, "FOO": "bar"}));
    assert!(by(8).flags.contains(&"outside_service_area") && by(8).flags.contains(&"hdop_high"));
    assert_eq!((by(18).encoding, by(18).vehicle_id, by(18).act_time), ("csv", 4223, 71279));
    assert_eq!((by(19).encoding, by(19).schedule_deviation), ("csv+14_field", Some(-105)));
    assert_eq!((by(21).encoding, by(21).vehicle_id, by(22).encoding, by(22).vehicle_id), ("json+compressed", 81, "json", 82));
    assert_eq!((by(24).encoding, by(24).vehicle_id, by(24).act_time), ("json", 83, 400));
    assert_eq!((by(25).encoding, by(25).vehicle_id, by(25).act_time), ("csv+double_encoded", 4224, 71279));
    // The timestamps, as another engine sees them.
    let dst = py_json(
        "import duckdb, sys, json\n\
         r = duckdb.connect().execute(f\"select vehicle_id, strftime(event_time at time zone 'UTC', '%Y-%m-%dT%H:%M:%SZ') as t, service_date::varchar as d from read_parquet('{sys.argv[1]}/standard/breadcrumbs/**/*.parquet', hive_partitioning=true) where vehicle_id in (78, 79) order by vehicle_id\").fetchall()\n\
         print(json.dumps(r))",
        &[&lake],
    );
    assert_eq!(dst, serde_json::json!([[78, "2023-03-12T17:00:00Z", "2023-03-12"], [79, "2023-02-16T09:00:00Z", "2023-02-15"]]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_holding_a_json_array_gives_one_record_per_element() {
    let topic = unique_topic("std-batch");
    create_topic(&topic, 1).await;
    let rec = |vehicle: i64, t: i64| format!(r#"{{"EVENT_NO_TRIP":9,"OPD_DATE":"12DEC2022:00:00:00","VEHICLE_ID":{vehicle},"ACT_TIME":{t},"GPS_LONGITUDE":-122.6,"GPS_LATITUDE":45.5}}"#);
    let bad = r#"{"EVENT_NO_TRIP":9,"OPD_DATE":"12DEC2022:00:00:00","ACT_TIME":5}"#;
    let payloads = vec![
        // A producer's batch, pretty-printed, one element without a vehicle.
        format!("[\n  {},\n  {},\n  {bad}\n]", rec(90, 1), rec(90, 2)).into_bytes(),
        // The same, compressed, with numbers as strings.
        gzip(format!("[{},{}]", rec(91, 1).replace(":91,", ":\"91\","), rec(91, 2)).as_bytes()),
        b"[]".to_vec(),
        b"[[{}]]".to_vec(),
        rec(92, 1).into_bytes(),
        // NDJSON: records as lines.
        format!("{}\n{}\n", rec(93, 1), rec(93, 2)).into_bytes(),
    ];
    produce_payloads(&topic, &payloads);
    let (pubk, privk) = keys();
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake").display().to_string();
    raw_ok(&topic, &lake, &pubk, &[]);
    let r = std_ok(&lake, &privk, &[]);
    // 3 + 2 + 1 + 1 + 1 + 2 records in 6 messages: each a row or a reject.
    assert_eq!((r["records_in"].as_u64(), r["rows_written"].as_u64(), r["rejects"].as_u64()), (Some(10), Some(7), Some(3)), "{r}");
    let (rows, rejects) = read_layer(&lake).await;
    let at = |o: i64| rows.iter().filter(|r| r.offset == o).map(|r| (r.bc.vehicle_id, r.bc.act_time, r.bc.encoding)).collect::<Vec<_>>();
    assert_eq!(at(0), [(90, 1, "json"), (90, 2, "json")]);
    assert_eq!(at(1), [(91, 1, "json+string_numbers+compressed"), (91, 2, "json+compressed")]);
    assert_eq!(at(4), [(92, 1, "json")]);
    assert_eq!(at(5), [(93, 1, "json"), (93, 2, "json")]);
    let rj: Vec<_> = rejects.iter().map(|r| (r.2, r.3.as_str(), r.4.as_str())).collect();
    assert_eq!(rj.len(), 3, "{rj:?}");
    assert!(rj.iter().any(|x| x.0 == 0 && x.1 == "missing_vehicle_id" && x.2.starts_with("element 3 of 3: ")), "{rj:?}");
    assert!(rj.contains(&(2, "empty_message", "an empty JSON array")), "{rj:?}");
    assert!(rj.iter().any(|x| x.0 == 3 && x.1 == "not_a_breadcrumb" && x.2 == "element 1 of 1: a JSON array inside a JSON array"), "{rj:?}");
    // The reject keeps the element as sent, not the whole batch.
    let payload = py_json(
        "import duckdb, sys, json\n\
         r = duckdb.connect().execute(f\"select payload::varchar from read_parquet('{sys.argv[1]}/standard/rejects/*.parquet') where kafka_offset = 0\").fetchall()\n\
         print(json.dumps([x[0] for x in r]))",
        &[&lake],
    );
    assert_eq!(payload, serde_json::json!([bad]));

    // `etl verify` balances the books with batches: 6 messages, 10 records, 7 rows + 3 rejects.
    let verify = || etl(&["verify", "--lake", &lake, "--private-key", privk.to_str().unwrap(), "--format", "json"]);
    let o = verify();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &v["standard"]["total"];
    assert_eq!([&t["raw_records"], &t["messages_seen"], &t["records"], &t["rows"], &t["rejects"]].map(|x| x.as_u64()), [6, 6, 10, 7, 3].map(Some), "{v}");
    // A manifest that counted one record fewer than the layer holds (a message converted twice
    // looks like this) does not balance, and says so.
    let log = Path::new(&lake).join("standard/_log");
    let manifest = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    for (_, figures) in m["consumed"].as_object_mut().unwrap() {
        figures["records"] = serde_json::json!(9);
    }
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = verify();
    assert!(!o.status.success(), "unbalanced books must fail verify");
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("books do not balance: 9 records converted but 7 rows + 3 rejects"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_and_pyarrow_read_the_layer_with_the_right_types_and_sums() {
    let (_d, lake, _topic, _) = samples_lake("std-engines").await;
    let (_, privk) = keys();
    std_ok(&lake, &privk, &[]);
    let (rows, _) = read_layer(&lake).await;
    let ours = serde_json::json!([
        rows.len(),
        rows.iter().map(|r| r.bc.meters.unwrap_or(0)).sum::<i64>(),
        rows.iter().map(|r| r.bc.act_time as i64).sum::<i64>(),
        rows.iter().map(|r| r.bc.event_time_us / 1_000_000).sum::<i64>(),
        rows.iter().map(|r| r.bc.vehicle_id).collect::<std::collections::BTreeSet<_>>().len(),
    ]);
    let duck = py_json(
        "import duckdb, sys, json\n\
         p = sys.argv[1] + '/standard/breadcrumbs/**/*.parquet'\n\
         con = duckdb.connect()\n\
         r = con.execute(f\"select count(*), sum(coalesce(meters,0)), sum(act_time), sum(epoch(event_time)::bigint), count(distinct vehicle_id) from read_parquet('{p}', hive_partitioning=true)\").fetchall()[0]\n\
         t = {c[0]: c[1] for c in con.execute(f\"describe select * from read_parquet('{p}', hive_partitioning=true)\").fetchall()}\n\
         print(json.dumps({'sums': list(r), 'types': t}))",
        &[&lake],
    );
    assert_eq!(duck["sums"], ours);
    assert_eq!(duck["types"]["event_time"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(duck["types"]["service_date"], "DATE");
    assert_eq!(duck["types"]["vehicle_id"], "BIGINT");
    assert_eq!(duck["types"]["quality_flags"], "VARCHAR[]");
    let pa = py_json(
        "import pyarrow as pa, pyarrow.dataset as ds, sys, json\n\
         part = ds.partitioning(pa.schema([('service_date', pa.date32())]), flavor='hive')\n\
         t = ds.dataset(sys.argv[1] + '/standard/breadcrumbs', format='parquet', partitioning=part).to_table()\n\
         print(json.dumps({'rows': t.num_rows, 'event_time': str(t.schema.field('event_time').type), 'service_date': str(t.schema.field('service_date').type), 'first': str(t.column('event_time')[0])}))",
        &[&lake],
    );
    assert_eq!(pa["rows"].as_u64(), Some(rows.len() as u64));
    assert_eq!(pa["event_time"], "timestamp[us, tz=UTC]");
    assert_eq!(pa["service_date"], "date32[day]");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_layer_can_live_in_a_store_of_its_own() {
    // As Terraform lays it out: one bucket per layer. Here: three directories.
    let topic = unique_topic("std-layers");
    create_topic(&topic, 3).await;
    let sent = produce_samples(&topic);
    let (pubk, privk) = keys();
    let d = tempfile::tempdir().unwrap();
    let (raw, std, arc) = (d.path().join("raw-bucket"), d.path().join("standard-bucket"), d.path().join("archive-bucket"));
    let (raw, std, arc) = (raw.to_str().unwrap(), std.to_str().unwrap(), arc.to_str().unwrap());
    // The raw job only knows the raw bucket.
    etl_ok(&["raw", "--brokers", &brokers(), "--topic", &topic, "--raw-lake", raw, "--public-key", pubk.to_str().unwrap()]);
    etl_ok(&["standard", "--raw-lake", raw, "--standard-lake", std, "--private-key", privk.to_str().unwrap()]);
    etl_ok(&["reduce", "--standard-lake", std, "--archive-lake", arc]);
    let out = etl_ok(&["query", "--standard-lake", std, "--archive-lake", arc, "--format", "csv", "select (select count(*) from breadcrumbs) + (select count(*) from rejects) as n, (select count(*) from trips) as t"]);
    assert_eq!(out.lines().nth(1), Some(format!("{sent},41").as_str()), "{out}");
    assert!(lake_files(Path::new(raw)).iter().all(|f| f.starts_with("raw/")));
    assert!(lake_files(Path::new(std)).iter().all(|f| f.starts_with("standard/")));
    assert!(lake_files(Path::new(arc)).iter().all(|f| f.starts_with("archive/")));
    let o = etl(&["verify", "--raw-lake", raw, "--standard-lake", std, "--private-key", privk.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
