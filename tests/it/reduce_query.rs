//! `etl reduce` and `etl query` on the real samples: policies, fidelity, trip summaries,
//! pruning, every named query in sql/ with checked results, and clear errors.

use crate::common::*;
use crate::standard::py_json;
use serde_json::Value;
use std::path::Path;
use tokio::sync::OnceCell;

/// A lake with raw + standard from the samples (built once for this test binary), copied per test.
pub(crate) async fn sample_lake() -> (tempfile::TempDir, String) {
    static BASE: OnceCell<(tempfile::TempDir, String)> = OnceCell::const_new();
    let (_, base) = BASE
        .get_or_init(|| async {
            let topic = unique_topic("rq");
            create_topic(&topic, 3).await;
            produce_samples(&topic);
            let (pubk, privk) = keys();
            let d = tempfile::tempdir().unwrap();
            let lake = d.path().join("lake").display().to_string();
            raw_ok(&topic, &lake, &pubk, &["--object-records", "3000"]);
            // Small row groups so that pruning shows on a small sample.
            etl_ok(&["standard", "--lake", &lake, "--private-key", privk.to_str().unwrap(), "--row-group-rows", "500"]);
            (d, lake)
        })
        .await;
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    copy_dir(Path::new(base), &lake);
    (d, lake.display().to_string())
}


fn reduce(lake: &str, extra: &[&str]) -> Value {
    let mut a = vec!["reduce", "--lake", lake, "--format", "json"];
    a.extend(extra);
    serde_json::from_str(&etl_ok(&a)).unwrap()
}

/// Runs SQL through `etl query --format json`; rows as JSON objects.
fn q(lake: &str, sql: &str) -> Vec<Value> {
    etl_ok(&["query", "--lake", lake, "--format", "json", sql]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn named(lake: &str, name: &str) -> Vec<Value> {
    etl_ok(&["query", "--lake", lake, "--format", "json", "--name", name]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn default_reduce_thins_to_30s_summarizes_every_trip_and_reruns_as_a_no_op() {
    let (_d, lake) = sample_lake().await;
    let dry = reduce(&lake, &["--dry-run"]);
    assert!(dry["version"].is_null());
    assert!(!Path::new(&lake).join("archive").exists(), "dry run wrote something");
    let r = reduce(&lake, &[]);
    assert_eq!(r["rows_before"], 12791);
    assert_eq!(r["rows_after"], dry["rows_after"]);
    assert_eq!(r["trips"], serde_json::json!([41, 41]));
    assert_eq!(r["trip_summaries"], 41);
    let ratio = num(&r["row_ratio"]);
    assert!((4.0..7.0).contains(&ratio), "breadcrumbs every ~5 s thinned to 30 s: {r}");
    assert!(num(&r["byte_ratio"]) > 2.0, "{r}");
    // Time thinning has no hard position bound; the path it keeps stays close in length.
    assert!(num(&r["mean_path_length_error_pct"]) < 5.0 && num(&r["max_path_length_error_pct"]) < 15.0, "{r}");
    // Points within a trip are ≥ 30 s apart except the last one; first and last are kept.
    let gaps = q(&lake, "select count(*) as n from (select act_time - lag(act_time) over (partition by service_date, vehicle_id, trip_id order by act_time) as d, row_number() over (partition by service_date, vehicle_id, trip_id order by act_time desc) as rn from archive_breadcrumbs) where d < 30 and rn > 1");
    assert_eq!(gaps[0]["n"], 0);
    let ends = q(&lake, "select count(*) as n from (select service_date, vehicle_id, trip_id, min(act_time) a, max(act_time) b from breadcrumbs group by 1,2,3) s join (select service_date, vehicle_id, trip_id, min(act_time) a, max(act_time) b from archive_breadcrumbs group by 1,2,3) t using (service_date, vehicle_id, trip_id) where s.a = t.a and s.b = t.b");
    assert_eq!(ends[0]["n"], 41);
    let files = lake_files(Path::new(&lake));
    let again = reduce(&lake, &[]);
    assert!(again["version"].is_null() && again["service_dates"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(lake_files(Path::new(&lake)), files);
}

#[tokio::test(flavor = "multi_thread")]
async fn trip_summary_matches_the_hand_checked_trip() {
    let (_d, lake) = sample_lake().await;
    reduce(&lake, &[]);
    // Trip 259172515 (data/…bc_trip259172515…csv): 161 readings, METERS 40 → 5918, ACT_TIME 20469 → 21439.
    let t = q(&lake, "select * from trips where trip_id = 259172515");
    assert_eq!(t.len(), 1);
    let t = &t[0];
    assert_eq!((t["vehicle_id"].as_i64(), t["points"].as_i64(), t["duration_s"].as_i64()), (Some(4223), Some(161), Some(970)));
    assert_eq!(num(&t["distance_m"]), 5878.0);
    assert!((num(&t["avg_speed_mps"]) - 5878.0 / 970.0).abs() < 1e-9);
    assert_eq!(t["service_date"], "2023-02-15");
    assert_eq!(t["start_time"], "2023-02-15T13:41:09Z"); // 20469 s = 05:41:09 PST
    assert!(num(&t["min_lat"]) > 45.49 && num(&t["max_lat"]) < 45.53);
    // Every trip: summary distance equals the odometer rise in the full standard layer.
    let fid = named(&lake, "archive_fidelity");
    assert_eq!(fid.len(), 2);
    assert!(fid.iter().all(|r| num(&r["max_distance_error_m"]) == 0.0));
    assert_eq!(fid.iter().map(|r| r["summarized_trips"].as_i64().unwrap()).sum::<i64>(), 41);
}

#[tokio::test(flavor = "multi_thread")]
async fn sampling_policies_are_deterministic_and_keep_what_they_say() {
    let (_d, lake) = sample_lake().await;
    // 50% of the two vehicles of 2022-12-12 (2901, 2905): the same one on every run.
    let mut kept_sets = Vec::new();
    for _ in 0..2 {
        let r = reduce(&lake, &["--vehicle-fraction", "0.5", "--seed", "7", "--dry-run"]);
        kept_sets.push(r["vehicles"].clone());
    }
    assert_eq!(kept_sets[0], kept_sets[1]);
    let want: Vec<i64> = [2901i64, 2905, 4029, 4223].into_iter().filter(|v| etl::reduce::sampled(7, *v, 0.5)).collect();
    reduce(&lake, &["--vehicle-fraction", "0.5", "--seed", "7"]);
    let got: Vec<i64> = q(&lake, "select distinct vehicle_id from archive_breadcrumbs order by 1").iter().map(|r| r["vehicle_id"].as_i64().unwrap()).collect();
    assert_eq!(got, want);
    let dec12: Vec<&i64> = want.iter().filter(|v| **v == 2901 || **v == 2905).collect();
    assert!(!want.is_empty() && want.len() < 4, "a 50% sample of 4 vehicles kept {want:?}");
    let _ = dec12;

    // Explicit list + trip fraction.
    let r = reduce(&lake, &["--vehicles", "4223", "--trip-fraction", "0.5", "--seed", "1", "--dry-run"]);
    let kept = r["trips"][1].as_u64().unwrap();
    assert!(kept > 0 && kept < 14, "{r}");

    // Path simplification: the deviation bound is the tolerance, by construction.
    let r = reduce(&lake, &["--simplify-meters", "15", "--dry-run"]);
    assert!(num(&r["max_deviation_m"]) <= 15.0 + 1e-6, "{r}");
    assert!(num(&r["row_ratio"]) > 2.0, "{r}");
    assert!(num(&r["max_path_length_error_pct"]) < 5.0, "{r}");

    // Only dates older than N days: with as-of 2023-02-20 and 30 days, only 2022-12-12 goes.
    let r = reduce(&lake, &["--older-than-days", "30", "--as-of", "2023-02-20", "--dry-run"]);
    assert_eq!(r["service_dates"], serde_json::json!(["2022-12-12"]));
    assert_eq!(r["dates_too_recent"], serde_json::json!(["2023-02-15"]));

    // A changed policy rebuilds, the same one does nothing.
    let r = reduce(&lake, &["--no-thin", "--no-summaries"]);
    assert_eq!(r["rows_after"], r["rows_before"]);
    assert!(reduce(&lake, &["--no-thin", "--no-summaries"])["version"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_named_query_runs_with_checked_results() {
    let (_d, lake) = sample_lake().await;
    reduce(&lake, &[]);
    let sql_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut names: Vec<String> = std::fs::read_dir(&sql_dir).unwrap().filter_map(|e| e.unwrap().file_name().to_str().unwrap().strip_suffix(".sql").map(str::to_string)).collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    let mut checked = Vec::new();
    for n in &names {
        let rows = named(&lake, n);
        match n.as_str() {
            "quality_summary" => {
                let get = |rule: &str| rows.iter().find(|r| r["rule"] == rule).map(|r| r["records"].as_i64().unwrap());
                assert_eq!(get("duplicate"), Some(161));
                assert_eq!(get("missing_position"), Some(5));
                assert_eq!(get("hdop_high"), Some(3));
                assert_eq!(rows.iter().filter(|r| r["kind"] == "reject").map(|r| r["records"].as_i64().unwrap()).sum::<i64>(), 161);
            }
            "trips_per_vehicle_day" => {
                let f = |v: i64| rows.iter().find(|r| r["vehicle_id"].as_i64() == Some(v)).unwrap().clone();
                // PROVENANCE.md: 2 vehicles with 26 trips on 2022-12-12; vehicle 4223's full day.
                assert_eq!(f(2901)["trips"].as_i64().unwrap() + f(2905)["trips"].as_i64().unwrap(), 26);
                assert_eq!(f(4223)["trips"], 14);
                assert_eq!(f(4223)["breadcrumbs"], 7405);
                assert_eq!(f(4029)["trips"], 1);
            }
            "speed_by_hour" => {
                assert!(rows.len() >= 15);
                assert!(rows.iter().all(|r| (0.0..40.0).contains(&num(&r["avg_speed_mps"]))));
                // Hours past midnight (ACT_TIME ≥ 86400) fold into 0 and 1.
                assert!(rows.iter().any(|r| r["hour_of_day"] == 0));
            }
            "reporting_gaps" => {
                assert!(rows.iter().all(|r| r["gap_s"].as_i64().unwrap() > 60));
                assert_eq!(rows[0]["gap_s"], 710);
                assert_eq!((rows[0]["trip_id"].as_i64(), rows[0]["prev_act_time"].as_i64()), (Some(259172936), Some(51195)));
                // Cross-check the count with DuckDB on the same files.
                let duck = py_json("import duckdb, sys, json\np = sys.argv[1] + '/standard/breadcrumbs/**/*.parquet'\nprint(json.dumps(duckdb.connect().execute(f\"select count(*) from (select act_time - lag(act_time) over (partition by service_date, vehicle_id, trip_id order by act_time) d from read_parquet('{p}', hive_partitioning=true)) where d > 60\").fetchall()[0][0]))", &[&lake]);
                assert_eq!(duck.as_u64(), Some(rows.len() as u64));
            }
            "busiest_hours" => {
                assert_eq!(rows.len(), 10);
                assert_eq!(rows[0]["hour_of_day"], 7);
                let b: Vec<i64> = rows.iter().map(|r| r["breadcrumbs"].as_i64().unwrap()).collect();
                assert!(b.windows(2).all(|w| w[0] >= w[1]));
            }
            "outside_service_area" => {
                assert_eq!(rows.iter().map(|r| r["no_position"].as_i64().unwrap()).sum::<i64>(), 5);
                assert_eq!(rows.iter().map(|r| r["outside_area"].as_i64().unwrap()).sum::<i64>(), 0);
            }
            "raw_standard_reconciliation" => {
                assert_eq!(rows.iter().map(|r| r["accounted"].as_i64().unwrap()).sum::<i64>(), 12952);
                for r in &rows {
                    assert_eq!(r["accounted"], r["distinct_offsets"]);
                    assert_eq!(r["last_offset"].as_i64().unwrap() - r["first_offset"].as_i64().unwrap() + 1, r["accounted"].as_i64().unwrap());
                }
            }
            "archive_fidelity" => {
                assert_eq!(rows.len(), 2);
                assert!(rows.iter().all(|r| num(&r["row_ratio"]) > 4.0));
            }
            "longest_trips" => {
                assert_eq!(rows.len(), 10);
                assert_eq!(rows[0]["trip_id"], 259172823);
                assert!((num(&rows[0]["distance_km"]) - 26.68).abs() < 1e-9);
            }
            other => panic!("sql/{other}.sql has no checked result in this test; add one"),
        }
        checked.push(n.clone());
    }
    assert_eq!(checked, names);
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_reads_a_small_fraction_for_one_day_or_one_vehicle() {
    let (_d, lake) = sample_lake().await;
    let metric = |plan: &str, name: &str| -> Vec<String> {
        plan.match_indices(&format!("{name}=")).map(|(i, _)| plan[i + name.len() + 1..].split([',', ']']).next().unwrap().trim().to_string()).collect()
    };
    let explain = |sql: &str| etl_ok(&["query", "--lake", &lake, "--format", "csv", &format!("explain analyze {sql}")]);
    let all = explain("select sum(meters) from breadcrumbs");
    let day = explain("select sum(meters) from breadcrumbs where service_date = DATE '2022-12-12'");
    let veh = explain("select sum(meters) from breadcrumbs where vehicle_id = 2901");
    let bytes = |p: &str| -> f64 {
        metric(p, "bytes_scanned").iter().map(|s| {
            let (n, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
            let n: f64 = n.trim().parse().unwrap_or(0.0);
            n * match unit.trim() { "K" | "KB" => 1e3, "M" | "MB" => 1e6, _ => 1.0 }
        }).sum()
    };
    let (b_all, b_day, b_veh) = (bytes(&all), bytes(&day), bytes(&veh));
    assert!(b_all > 0.0, "{all}");
    // One of two days: one file pruned by the partition column before any byte is read.
    assert!(b_day < 0.75 * b_all, "day: {b_day} of {b_all}\n{day}");
    // One of four vehicles, sorted files with statistics and a page index: most row groups skipped.
    assert!(b_veh < 0.5 * b_all, "vehicle: {b_veh} of {b_all}\n{veh}");
    let pruned = metric(&veh, "row_groups_pruned_statistics").join(" ");
    assert!(pruned.contains("→"), "{veh}");
    // And the answers are right.
    let s = q(&lake, "select sum(meters) as s, count(*) as n from breadcrumbs where vehicle_id = 2901");
    assert_eq!(s[0]["n"], 2607);
}

#[tokio::test(flavor = "multi_thread")]
async fn datafusion_and_duckdb_agree_on_counts_and_sums() {
    let (_d, lake) = sample_lake().await;
    let df = q(&lake, "select count(*) as n, sum(meters) as m, sum(act_time) as a, sum(cast(to_unixtime(event_time) as bigint)) as t, count(distinct vehicle_id) as v, count(distinct service_date) as d from breadcrumbs");
    let duck = py_json(
        "import duckdb, sys, json\np = sys.argv[1] + '/standard/breadcrumbs/**/*.parquet'\nr = duckdb.connect().execute(f\"select count(*), sum(meters), sum(act_time), sum(epoch(event_time)::bigint), count(distinct vehicle_id), count(distinct service_date) from read_parquet('{p}', hive_partitioning=true)\").fetchall()[0]\nprint(json.dumps([int(x) for x in r]))",
        &[&lake],
    );
    let d = &df[0];
    let ours: Vec<i64> = ["n", "m", "a", "t", "v", "d"].iter().map(|k| num(&d[*k]) as i64).collect();
    assert_eq!(serde_json::json!(ours), duck);
    assert_eq!(ours[0], 12791);
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_over_each_trip_matches_duckdb_with_one_and_with_two_files_per_date() {
    // etl declares the files' order to DataFusion (no sort before window functions); the
    // answers must stay right when a date has two overlapping files (etl then declares nothing,
    // and DataFusion also refuses an order its file statistics cannot prove).
    let (_d, lake) = sample_lake().await;
    let inner = "select meters - lag(meters) over (partition by service_date, vehicle_id, trip_id order by act_time) as dm, \
                 act_time - lag(act_time) over (partition by service_date, vehicle_id, trip_id order by act_time) as dt from breadcrumbs";
    let check = |files: usize| {
        let ours = q(&lake, &format!("select sum(dm) as m, sum(dt) as t, count(dm) as n from ({inner})"));
        let ours: Vec<i64> = ["m", "t", "n"].iter().map(|k| num(&ours[0][*k]) as i64).collect();
        let duck = py_json(
            &format!("import duckdb, sys, json\np = sys.argv[1] + '/standard/breadcrumbs/**/*.parquet'\ncon = duckdb.connect()\ncon.execute(f\"create view breadcrumbs as select * from read_parquet('{{p}}', hive_partitioning=true)\")\nr = con.execute(\"select sum(dm), sum(dt), count(dm) from ({inner})\").fetchall()[0]\nprint(json.dumps([int(x) for x in r]))"),
            &[&lake],
        );
        assert_eq!(serde_json::json!(ours), duck, "with {files} file(s) per date");
        assert!(ours[2] > 10_000, "{ours:?}");
    };
    check(1);
    let dir = std::path::Path::new(&lake).join("standard/breadcrumbs/service_date=2022-12-12");
    let file = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    std::fs::copy(&file, dir.join("part-zzzzzz-copy.parquet")).unwrap();
    check(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sql_unknown_tables_and_empty_lakes_fail_clearly() {
    let (_d, lake) = sample_lake().await;
    let check = |args: &[&str], needle: &str| {
        let o = etl(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle) && !e.contains("panicked"), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    };
    check(&["query", "--lake", &lake, "selec * from breadcrumbs"], "SQL error");
    check(&["query", "--lake", &lake, "select * from no_such_table"], "no_such_table");
    check(&["query", "--lake", &lake, "select no_such_column from breadcrumbs"], "no_such_column");
    check(&["query", "--lake", &lake, "--name", "no_such_query"], "no_such_query");
    let empty = tempfile::tempdir().unwrap();
    let e = empty.path().display().to_string();
    check(&["query", "--lake", &e, "select count(*) from breadcrumbs"], "no tables yet");
    check(&["reduce", "--lake", &e], "no standard layer");
    // Output to a file, in Parquet.
    let out = empty.path().join("out.parquet");
    etl_ok(&["query", "--lake", &lake, "--format", "parquet", "--out", out.to_str().unwrap(), "select vehicle_id, count(*) n from breadcrumbs group by 1"]);
    assert_eq!(&std::fs::read(&out).unwrap()[..4], b"PAR1");
}
