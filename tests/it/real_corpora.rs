//! Real Falco data (`../shared/corpora/real/`): every file replays without a
//! crash and with every line accounted for; real alerts are snapshotted.

use std::path::PathBuf;

use scbe_core::Policy;

use crate::support::{config, count_lines, replay_file, shared_dir};

fn real_files(shared: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["alerts", "scap"] {
        for entry in std::fs::read_dir(shared.join("corpora/real").join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_real_file_replays_with_every_line_accounted_for() {
    let Some(shared) = shared_dir("real corpora") else {
        return;
    };
    let files = real_files(&shared);
    assert!(
        files.len() >= 10,
        "expected the real corpora, found {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for real_network_fields in [false, true] {
            let mut policy = Policy::reference();
            policy.real_network_fields = real_network_fields;
            let (out, errors, summary) = replay_file(&path, &config(policy, 2, true));
            let name = path.display();
            assert_eq!(
                summary.lines_read,
                count_lines(&bytes),
                "{name}: lines read"
            );
            assert_eq!(
                summary.lines_read,
                summary.blank_lines + summary.events_seen,
                "{name}"
            );
            assert_eq!(
                summary.events_seen,
                summary.decided + summary.errors,
                "{name}"
            );
            assert_eq!(
                out.lines().count() as u64,
                summary.decided,
                "{name}: one record per event"
            );
            assert_eq!(
                errors.lines().count() as u64,
                summary.errors,
                "{name}: one error per bad line"
            );
        }
    }
}

#[test]
fn real_alert_decisions() {
    let Some(shared) = shared_dir("real alerts") else {
        return;
    };
    for name in ["falco_alerts_real.jsonl", "falco_payloads_demo_test.jsonl"] {
        let path = shared.join("corpora/real/alerts").join(name);
        let (out, errors, _) = replay_file(&path, &config(Policy::reference(), 2, true));
        insta::assert_snapshot!(name, format!("{out}# errors\n{errors}"));
    }
}

#[test]
fn real_network_fields_see_both_ends_of_real_connections() {
    let Some(shared) = shared_dir("real network fields") else {
        return;
    };
    let path = shared.join("corpora/real/scap/falco__connect_localhost.falco.jsonl");
    let mut policy = Policy::reference();
    let (reference_out, _, _) = replay_file(&path, &config(policy.clone(), 1, false));
    policy.real_network_fields = true;
    let (real_out, _, _) = replay_file(&path, &config(policy, 1, false));
    let targets = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains("\"operation\":\"network_connect\""))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["target"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let with_reference = targets(&reference_out);
    let with_real = targets(&real_out);
    assert!(!with_real.is_empty());
    assert!(
        with_real
            .iter()
            .any(|t| t.contains("->") && t.contains("127.0.0.1")),
        "real fields give client->server targets: {with_real:?}"
    );
    assert!(
        with_reference.iter().all(|t| !t.contains("->")),
        "the reference mapping sees at most one end: {with_reference:?}"
    );
}

/// Every line of every corpus here — the parity corpus, the real recorded
/// ones, the shipped examples and hostile files — reads the same through
/// the fast path for Falco-shaped lines as through the general reader
/// alone: the same members located, the same errors; also with member
/// names guessed from every line read before it.
#[test]
fn the_fast_reader_agrees_with_the_general_reader_on_every_corpus_line() {
    use scbe_core::falco::{classify_line, FalcoDoc, KeyOrder, RawLine};
    let mut order = KeyOrder::new();
    let mut files = Vec::new();
    for dir in ["corpora", "corpora/examples", "corpora/hostile"] {
        files.extend(jsonl_files(&crate::support::root().join(dir)));
    }
    if let Some(shared) = shared_dir("fast reader on shared corpora") {
        files.push(shared.join("parity/corpus.jsonl"));
        files.extend(real_files(&shared));
    }
    let mut read_ok = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("corpus reads");
        for raw in bytes.split(|&b| b == b'\n') {
            let Ok(RawLine::Text(text)) = classify_line(raw) else {
                continue;
            };
            let general = FalcoDoc::read_general(text);
            assert_eq!(FalcoDoc::read(text), general, "{}: {text}", path.display());
            assert_eq!(
                FalcoDoc::read_with(text, &mut order),
                general,
                "{} (names guessed): {text}",
                path.display()
            );
            read_ok += usize::from(general.is_ok());
        }
    }
    assert!(
        read_ok > 100,
        "only {read_ok} lines read: the corpora are missing"
    );
}

fn jsonl_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}
