//! The binary as a user meets it: the embedded demo, help, and config errors.

use crate::common::*;

#[test]
fn demo_runs_every_stage_on_the_embedded_default() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("demo");
    let out = etl_ok(&["demo", "--lake", lake.to_str().unwrap()]);
    for section in ["== keys", "== kafka: in-process mock cluster", "== produce: 5385 messages", "== raw:", "== standard:", "== verify:", "== reduce", "== query sql/trips_per_vehicle_day.sql", "== done"] {
        assert!(out.contains(section), "missing {section:?} in:\n{out}");
    }
    assert!(out.contains("12952 raw records = 12791 rows + 161 rejects"), "{out}");
    assert!(lake.join("keys/etl-private.pem").exists() && lake.join("keys/etl-public.pem").exists());
    // Runs again on the same directory (the mock cluster starts empty; the demo resets its layers).
    let again = etl_ok(&["demo", "--lake", lake.to_str().unwrap()]);
    assert!(again.contains("reusing"), "{again}");
    // Refuses a directory it did not make.
    let other = d.path().join("mine");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "x").unwrap();
    let o = etl(&["demo", "--lake", other.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not made by `etl demo`"));
    assert!(other.join("precious.txt").exists());
}

#[test]
fn help_lists_every_command_and_missing_settings_are_named() {
    let help = etl_ok(&["--help"]);
    for c in ["keys", "produce", "raw", "standard", "reduce", "query", "cat", "verify", "demo"] {
        assert!(help.contains(c), "{c} missing from --help");
    }
    let o = etl(&["standard"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--private-key") && e.contains("ETL_PRIVATE_KEY"), "{e}");
    let (_, privk) = keys();
    let o = etl(&["standard", "--private-key", privk.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--lake") && e.contains("ETL_LAKE"), "{e}");
    let o = etl(&["produce", "--brokers", "127.0.0.1:1", "--topic", "t", "/no/such/file.json"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("/no/such/file.json"));
}
