//! The `scbe-sim bench` command line: what its JSON report holds, and its
//! errors. (Throughput itself is never asserted: this machine's speed varies
//! by 2× from one minute to the next.)

use std::process::Command;

mod common;

use common::{example, sim};

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = sim()
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench --json prints one JSON object")
}

#[test]
fn generated_corpus_report_has_every_row_and_measure() {
    let report = bench_json(&[
        "--events",
        "3000",
        "--threads",
        "1,2",
        "--repeats",
        "2",
        "--pair",
    ]);
    assert_eq!(report["events"], 3000);
    assert!(report["input_bytes"].as_u64().unwrap() > 3000 * 100);
    let rows = report["scaling"].as_array().unwrap();
    let threads: Vec<u64> = rows
        .iter()
        .map(|r| r["threads"].as_u64().unwrap())
        .collect();
    assert_eq!(threads, [1, 2]);
    for row in rows {
        assert!(row["events_per_second"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["megabytes_per_second"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["wall_seconds"].as_f64().unwrap() > 0.0, "{row}");
        // Without --python there is nothing to compare with.
        assert!(row["vs_python_json_loads"].is_null(), "{row}");
        let steal = row["steal_percent"].as_f64().expect("Linux reports steal");
        assert!((0.0..=100.0).contains(&steal), "{row}");
    }
    assert_eq!(rows[0]["speedup"], 1.0);
    assert!(report["independent_pair_speedup"].as_f64().unwrap() > 0.0);
    let latency = &report["latency_ns"];
    let (p50, p99, p999) = (
        latency["p50"].as_u64().unwrap(),
        latency["p99"].as_u64().unwrap(),
        latency["p99.9"].as_u64().unwrap(),
    );
    assert!(0 < p50 && p50 <= p99 && p99 <= p999, "{latency}");
    assert!(report["peak_rss_kib"].as_u64().unwrap() > 0);
    assert!(report["python_json_loads_lines_per_second"].is_null());
}

#[test]
fn a_given_corpus_is_compared_with_the_python_loop() {
    let corpus = example("clean-workload.jsonl");
    let report = bench_json(&[
        "--input",
        corpus.to_str().unwrap(),
        "--threads",
        "1",
        "--repeats",
        "1",
        "--python",
    ]);
    assert_eq!(report["events"], 10);
    assert_eq!(report["scaling"].as_array().unwrap().len(), 1);
    if python3_available() {
        assert!(
            report["python_json_loads_lines_per_second"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        assert!(
            report["scaling"][0]["vs_python_json_loads"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        let steal = report["python_steal_percent"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&steal));
    } else {
        assert!(report["python_json_loads_lines_per_second"].is_null());
    }
}

#[test]
fn the_table_names_its_columns() {
    let corpus = example("clean-workload.jsonl");
    let out = sim()
        .args(["bench", "--threads", "1", "--repeats", "1", "--input"])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("threads"), "{table}");
    assert!(table.contains("events/s"), "{table}");
    assert!(table.contains("CPU stolen"), "{table}");
    assert!(table.contains("per-event latency"), "{table}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let corpus = example("clean-workload.jsonl");
    for (args, expected) in [
        (vec!["--threads", "2", "--pair"], "--pair needs 1"),
        (vec!["--threads", "0"], "at least 1"),
    ] {
        let out = sim()
            .arg("bench")
            .args(&args)
            .arg("--input")
            .arg(&corpus)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = sim()
        .args(["bench", "--input", "/nonexistent/corpus.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/corpus.jsonl"));

    // Nothing to measure: no events asked for, or a corpus without any.
    let out = sim().args(["bench", "--events", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--events must be at least 1"));
    let empty = std::env::temp_dir().join(format!("scbe-bench-empty-{}.jsonl", std::process::id()));
    std::fs::write(&empty, "\n\n").unwrap();
    let out = sim()
        .args(["bench", "--repeats", "1", "--input"])
        .arg(&empty)
        .output()
        .unwrap();
    std::fs::remove_file(&empty).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no events"));
}
