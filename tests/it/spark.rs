//! Apache Spark (PySpark from PyPI, local mode, the machine's Java 17+) reads the standard and
//! archive layers as they are — plain hive-partitioned Parquet, no catalog, no connector — and
//! gets the same counts, sums, types and instants as `etl query`.

use crate::common::*;
use crate::reduce_query::sample_lake;
use crate::standard::python;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::process::{Command, Stdio};

/// The Spark side: reads the lake's directories with `spark.read.parquet` (hive partition
/// discovery, type inference on) and answers with one JSON object. Timestamps are rendered in
/// SQL, in the session time zone (UTC), and as epoch microseconds: never through Python
/// `datetime`, which PySpark hands back naive in the *process's* local zone.
const SPARK: &str = r#"
import json, sys
from pyspark.sql import SparkSession

lake = sys.argv[1]
spark = (SparkSession.builder.master("local[2]").appName("etl-it-spark")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.memory", "512m")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.sources.partitionColumnTypeInference.enabled", "true")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")

types = {}
for view, path in [("breadcrumbs", "standard/breadcrumbs"), ("rejects", "standard/rejects"),
                   ("archive_breadcrumbs", "archive/breadcrumbs"), ("trips", "archive/trips")]:
    df = spark.read.parquet(f"{lake}/{path}")
    df.createOrReplaceTempView(view)
    types[view] = {f.name: f.dataType.simpleString() for f in df.schema.fields}

ISO = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
def rows(sql):
    return [r.asDict() for r in spark.sql(sql).collect()]

out = {
    "version": spark.version,
    "jvm_zone": spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID(),
    "types": types,
    "breadcrumbs": rows(f"""select count(*) n, sum(meters) m, sum(act_time) a, count(distinct vehicle_id) v,
        sum(unix_seconds(event_time)) t,
        date_format(min(event_time), "{ISO}") lo, date_format(max(event_time), "{ISO}") hi,
        unix_micros(min(event_time)) lo_us, unix_micros(max(event_time)) hi_us,
        unix_millis(min(kafka_timestamp)) k_lo_ms, unix_millis(max(kafka_timestamp)) k_hi_ms,
        sum(size(quality_flags)) flags, count(distinct service_date) d from breadcrumbs""")[0],
    "per_date": rows("""select cast(service_date as string) d, count(*) n, sum(meters) m,
        unix_micros(min(event_time)) lo_us, unix_micros(max(event_time)) hi_us
        from breadcrumbs group by service_date order by service_date"""),
    "flags": rows("select f, count(*) n from breadcrumbs lateral view explode(quality_flags) x as f group by f order by f"),
    "rejects": rows(f"""select count(*) n, count(service_date) with_date, count(distinct kafka_offset) offsets,
        date_format(min(kafka_timestamp), "{ISO}") k_lo, unix_millis(min(kafka_timestamp)) k_lo_ms,
        unix_millis(max(kafka_timestamp)) k_hi_ms from rejects""")[0],
    "reject_rules": rows("select rule, count(*) n from rejects group by rule order by rule"),
    "archive_breadcrumbs": rows("select count(*) n, sum(meters) m, count(distinct service_date) d from archive_breadcrumbs")[0],
    "trips": rows(f"""select count(*) n, sum(points) p, sum(duration_s) s, sum(distance_m) dist,
        date_format(min(start_time), "{ISO}") lo, date_format(max(end_time), "{ISO}") hi,
        unix_micros(min(start_time)) lo_us, unix_micros(max(end_time)) hi_us from trips""")[0],
    "trips_per_date": rows("select cast(service_date as string) d, count(*) n, sum(points) p from trips group by service_date order by service_date"),
    "trip_259172515": rows(f"""select vehicle_id, points, duration_s, cast(service_date as string) d,
        date_format(start_time, "{ISO}") start, unix_micros(end_time) end_us from trips where trip_id = 259172515"""),
}
spark.stop()
print(json.dumps(out))
"#;

/// The `java` Spark will use (as PySpark and `scripts/kafka.sh` find it), checked to be 17+;
/// a clear failure rather than PySpark's "Java gateway process exited".
fn require_java() {
    let java = std::env::var_os("JAVA_HOME").map(|h| std::path::Path::new(&h).join("bin/java")).unwrap_or_else(|| "java".into());
    let o = Command::new(&java).arg("-version").output().unwrap_or_else(|e| {
        panic!("the Spark test needs Java 17+ and `{}` did not run ({e}): install it (apt-get install openjdk-17-jre-headless, as .ci/run does) or set JAVA_HOME", java.display())
    });
    let v = String::from_utf8_lossy(&o.stderr).to_string();
    let major: u32 = v
        .split('"')
        .nth(1)
        .and_then(|s| s.split(['.', '-', '+']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the Spark test needs Java 17+; cannot read the version of `{}`:\n{v}", java.display()));
    assert!(o.status.success() && major >= 17, "the Spark test needs Java 17+ (Spark 4), `{}` is:\n{v}", java.display());
}

/// Runs [`SPARK`] on `lake` with the venv of `scripts/pyenv.sh`. The process (and so Spark's JVM)
/// runs in America/Los_Angeles, the data's own zone, so that anything depending on the machine's
/// zone rather than the instants in the files would show as an 8-hour shift.
fn spark(lake: &str) -> Value {
    let py = python();
    let o = Command::new("timeout")
        .args(["-k", "10", "300"])
        .arg(&py)
        .arg("-c")
        .arg(SPARK)
        .arg(lake)
        .env("TZ", "America/Los_Angeles")
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env_remove("SPARK_HOME")
        .env_remove("PYSPARK_SUBMIT_ARGS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let tail: String = err.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(o.status.success(), "pyspark failed ({}; 124 = timed out after 300 s):\n{tail}", o.status);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON from pyspark ({e}): {}\n{tail}", String::from_utf8_lossy(&o.stdout)))
}

/// The Spark SQL name of an Arrow type as `etl query`'s DESCRIBE prints it.
fn spark_type(arrow: &str) -> String {
    match arrow {
        "Int64" => "bigint",
        "Int32" => "int",
        "Float64" => "double",
        "Boolean" => "boolean",
        "Date32" => "date",
        "Utf8" | "Utf8View" | "LargeUtf8" => "string",
        t if t.starts_with("Timestamp(") && t.contains("UTC") => "timestamp",
        t if t.starts_with("Timestamp(") => "timestamp_ntz",
        t if t.starts_with("List(") && t.contains("Utf8") => "array<string>",
        t => panic!("no Spark name for the Arrow type {t}"),
    }
    .to_string()
}

/// Runs SQL through `etl query --format json`; rows as JSON objects.
fn q(lake: &str, sql: &str) -> Vec<Value> {
    etl_ok(&["query", "--lake", lake, "--format", "json", sql]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn int(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn float(v: &Value) -> f64 {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

/// An RFC 3339 string (either engine's rendering) as an instant.
fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap_or_else(|e| panic!("{v}: {e}")).with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_reads_the_lake_with_the_same_counts_types_and_timestamps() {
    require_java();
    let (_d, lake) = sample_lake().await;
    etl_ok(&["reduce", "--lake", &lake]);
    let s = spark(&lake);
    assert!(s["version"].as_str().is_some_and(|v| v.starts_with("4.")), "{}", s["version"]);
    assert_eq!(s["jvm_zone"], "America/Los_Angeles", "the JVM did not run in the zone the test set");

    // Types: Spark's own names for what the README promises.
    let ty = |t: &str, c: &str| s["types"][t][c].as_str().unwrap_or_else(|| panic!("Spark sees no {t}.{c}: {}", s["types"][t])).to_string();
    for t in ["breadcrumbs", "archive_breadcrumbs"] {
        assert_eq!(ty(t, "event_time"), "timestamp", "{t}: TIMESTAMP(isAdjustedToUTC=true, MICROS) is an instant (TIMESTAMP_LTZ), not timestamp_ntz");
        assert_eq!(ty(t, "kafka_timestamp"), "timestamp", "{t}");
        assert_eq!(ty(t, "service_date"), "date", "{t}: the hive partition value yyyy-MM-dd is inferred as DATE");
        assert_eq!(ty(t, "quality_flags"), "array<string>", "{t}");
        assert_eq!(ty(t, "vehicle_id"), "bigint", "{t}");
        assert_eq!(ty(t, "act_time"), "int", "{t}");
        assert_eq!(ty(t, "meters"), "bigint", "{t}");
        assert_eq!(ty(t, "latitude"), "double", "{t}");
    }
    assert_eq!(ty("rejects", "service_date"), "date");
    assert_eq!(ty("rejects", "kafka_timestamp"), "timestamp");
    assert_eq!(ty("rejects", "payload_is_utf8"), "boolean");
    assert_eq!((ty("trips", "start_time"), ty("trips", "end_time"), ty("trips", "service_date")), ("timestamp".into(), "timestamp".into(), "date".into()));
    // Every column of every table: the same name and the same type as `etl query` has.
    for t in ["breadcrumbs", "rejects", "archive_breadcrumbs", "trips"] {
        let ours: std::collections::BTreeMap<String, String> = q(&lake, &format!("describe {t}"))
            .iter()
            .map(|r| (r["column_name"].as_str().unwrap().to_string(), spark_type(r["data_type"].as_str().unwrap())))
            .collect();
        let theirs: std::collections::BTreeMap<String, String> = s["types"][t].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
        assert_eq!(theirs, ours, "{t}: Spark's schema differs from etl query's (mapped to Spark names)");
    }

    // standard/breadcrumbs: counts, sums, distinct vehicles, the first and last instant.
    let e = &q(&lake, "select count(*) n, sum(meters) m, sum(act_time) a, count(distinct vehicle_id) v, sum(cast(to_unixtime(event_time) as bigint)) t, min(event_time) lo, max(event_time) hi, cast(min(event_time) as bigint) lo_us, cast(max(event_time) as bigint) hi_us, cast(min(kafka_timestamp) as bigint) k_lo_ms, cast(max(kafka_timestamp) as bigint) k_hi_ms, sum(array_length(quality_flags)) flags, count(distinct service_date) d from breadcrumbs")[0];
    let b = &s["breadcrumbs"];
    assert_eq!(int(&e["n"]), 12791);
    for k in ["n", "m", "a", "v", "t", "lo_us", "hi_us", "k_lo_ms", "k_hi_ms", "flags", "d"] {
        assert_eq!(int(&b[k]), int(&e[k]), "breadcrumbs {k}: Spark {b} vs etl {e}");
    }
    for k in ["lo", "hi"] {
        assert_eq!(instant(&b[k]), instant(&e[k]), "breadcrumbs {k}: Spark {} vs etl {}", b[k], e[k]);
        assert!(b[k].as_str().unwrap().ends_with('Z'), "Spark rendered {} outside UTC", b[k]);
    }
    // The first reading: 2022-12-12 ACT_TIME 19963 s after local (PST) midnight.
    assert_eq!(e["lo"], "2022-12-12T13:32:43Z");
    assert_eq!(b["lo"], "2022-12-12T13:32:43.000000Z");

    // Per service date (the partition column): counts, sums and the instants of each day.
    let ed = q(&lake, "select cast(service_date as varchar) d, count(*) n, sum(meters) m, cast(min(event_time) as bigint) lo_us, cast(max(event_time) as bigint) hi_us from breadcrumbs group by service_date order by service_date");
    let sd = s["per_date"].as_array().unwrap();
    assert_eq!(sd.len(), 2, "{sd:?}");
    assert_eq!(sd.len(), ed.len());
    for (x, y) in sd.iter().zip(&ed) {
        assert_eq!(x["d"], y["d"]);
        for k in ["n", "m", "lo_us", "hi_us"] {
            assert_eq!(int(&x[k]), int(&y[k]), "{} {k}: Spark {x} vs etl {y}", x["d"]);
        }
    }
    assert_eq!(sd.iter().map(|r| (r["d"].as_str().unwrap(), int(&r["n"]))).collect::<Vec<_>>(), [("2022-12-12", 5385), ("2023-02-15", 7406)]);

    // Quality flags: the LIST<VARCHAR> column, element by element.
    let ef = q(&lake, "select f, count(*) n from (select unnest(quality_flags) f from breadcrumbs) group by f order by f");
    let sf = s["flags"].as_array().unwrap();
    assert!(!sf.is_empty());
    assert_eq!(sf.iter().map(|r| (r["f"].as_str().unwrap().to_string(), int(&r["n"]))).collect::<Vec<_>>(), ef.iter().map(|r| (r["f"].as_str().unwrap().to_string(), int(&r["n"]))).collect::<Vec<_>>());

    // standard/rejects (not partitioned; its service_date is a column of the files).
    let er = &q(&lake, "select count(*) n, count(service_date) with_date, count(distinct kafka_offset) offsets, min(kafka_timestamp) k_lo, cast(min(kafka_timestamp) as bigint) k_lo_ms, cast(max(kafka_timestamp) as bigint) k_hi_ms from rejects")[0];
    let sr = &s["rejects"];
    for k in ["n", "with_date", "offsets", "k_lo_ms", "k_hi_ms"] {
        assert_eq!(int(&sr[k]), int(&er[k]), "rejects {k}: Spark {sr} vs etl {er}");
    }
    assert_eq!(instant(&sr["k_lo"]), instant(&er["k_lo"]), "rejects kafka_timestamp (ms): Spark {} vs etl {}", sr["k_lo"], er["k_lo"]);
    assert_eq!(int(&sr["n"]), 161);
    let err_rules = q(&lake, "select rule, count(*) n from rejects group by rule order by rule");
    assert_eq!(s["reject_rules"].as_array().unwrap().iter().map(|r| (r["rule"].clone(), int(&r["n"]))).collect::<Vec<_>>(), err_rules.iter().map(|r| (r["rule"].clone(), int(&r["n"]))).collect::<Vec<_>>());

    // archive/breadcrumbs.
    let ea = &q(&lake, "select count(*) n, sum(meters) m, count(distinct service_date) d from archive_breadcrumbs")[0];
    for k in ["n", "m", "d"] {
        assert_eq!(int(&s["archive_breadcrumbs"][k]), int(&ea[k]), "archive_breadcrumbs {k}: Spark {} vs etl {ea}", s["archive_breadcrumbs"]);
    }

    // archive/trips.
    let et = &q(&lake, "select count(*) n, sum(points) p, sum(duration_s) s, sum(distance_m) dist, min(start_time) lo, max(end_time) hi, cast(min(start_time) as bigint) lo_us, cast(max(end_time) as bigint) hi_us from trips")[0];
    let st = &s["trips"];
    for k in ["n", "p", "s", "lo_us", "hi_us"] {
        assert_eq!(int(&st[k]), int(&et[k]), "trips {k}: Spark {st} vs etl {et}");
    }
    assert!((float(&st["dist"]) - float(&et["dist"])).abs() <= 1e-9 * float(&et["dist"]).abs(), "trips distance: Spark {st} vs etl {et}");
    for k in ["lo", "hi"] {
        assert_eq!(instant(&st[k]), instant(&et[k]), "trips {k}: Spark {} vs etl {}", st[k], et[k]);
    }
    assert_eq!((int(&st["n"]), int(&st["p"])), (41, 12791));
    let etd = q(&lake, "select cast(service_date as varchar) d, count(*) n, sum(points) p from trips group by service_date order by service_date");
    assert_eq!(
        s["trips_per_date"].as_array().unwrap().iter().map(|r| (r["d"].clone(), int(&r["n"]), int(&r["p"]))).collect::<Vec<_>>(),
        etd.iter().map(|r| (r["d"].clone(), int(&r["n"]), int(&r["p"]))).collect::<Vec<_>>()
    );
    // The hand-checked trip (tests/it/reduce_query.rs): 05:41:09 PST is 13:41:09 UTC.
    let t = &s["trip_259172515"][0];
    assert_eq!((int(&t["vehicle_id"]), int(&t["points"]), int(&t["duration_s"])), (4223, 161, 970));
    assert_eq!((t["d"].as_str(), t["start"].as_str()), (Some("2023-02-15"), Some("2023-02-15T13:41:09.000000Z")));
    let et1 = &q(&lake, "select cast(end_time as bigint) end_us from trips where trip_id = 259172515")[0];
    assert_eq!(int(&t["end_us"]), int(&et1["end_us"]));
}
