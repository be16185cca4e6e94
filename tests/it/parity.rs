//! The acceptance bar: the reference policy reproduces the Python gate's
//! output for every line of `../shared/parity/` (SPEC.md, parity/README.md).

use scbe_core::json::{self, JsonValue};

use crate::support::{parity_config, replay_file, shared_dir};

/// Compare two JSON values: same keys in the same order, same strings and
/// booleans, numbers within 1e-9. Returns the path of the first difference.
fn compare(expected: &JsonValue<'_>, actual: &JsonValue<'_>, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (JsonValue::Object(e), JsonValue::Object(a)) => {
            let ek: Vec<&str> = e.iter().map(|(k, _)| k.as_ref()).collect();
            let ak: Vec<&str> = a.iter().map(|(k, _)| k.as_ref()).collect();
            if ek != ak {
                return Err(format!("{path}: keys {ek:?} != {ak:?}"));
            }
            for ((key, ev), (_, av)) in e.iter().zip(a) {
                compare(ev, av, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (JsonValue::Array(e), JsonValue::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path}: {} items != {} items", e.len(), a.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) => match (number(e), number(a)) {
            (Some(x), Some(y)) if (x - y).abs() <= 1e-9 || x.to_string() == y.to_string() => Ok(()),
            (Some(_), Some(_)) => Err(format!("{path}: {e:?} != {a:?}")),
            _ if e == a => Ok(()),
            _ => Err(format!("{path}: {e:?} != {a:?}")),
        },
    }
}

fn number(value: &JsonValue<'_>) -> Option<f64> {
    match value {
        JsonValue::Int(text) => text.parse().ok(),
        JsonValue::Float(f) => Some(*f),
        _ => None,
    }
}

#[test]
fn reference_policy_matches_the_python_gate_line_for_line() {
    let Some(shared) = shared_dir("parity") else {
        return;
    };
    let expected = std::fs::read_to_string(shared.join("parity/expected.jsonl")).unwrap();
    let (out, errors, summary) =
        replay_file(&shared.join("parity/corpus.jsonl"), &parity_config(2));

    let error_lines: Vec<u64> = errors
        .lines()
        .filter_map(|line| match json::parse(line).ok()?.get("line")? {
            JsonValue::Int(n) => n.parse().ok(),
            _ => None,
        })
        .collect();
    let mut records = out.lines();
    let mut mismatches = Vec::new();
    let mut n_lines = 0u64;
    for (i, want) in expected.lines().enumerate() {
        let line_no = i as u64 + 1;
        n_lines += 1;
        let want = json::parse(want).expect("expected.jsonl parses");
        let want_error = want.get("error").is_some() && want.get("line").is_some();
        if want_error {
            if !error_lines.contains(&line_no) {
                mismatches.push(format!(
                    "line {line_no}: the reference rejected it, we decided it"
                ));
            }
            continue;
        }
        if error_lines.contains(&line_no) {
            mismatches.push(format!(
                "line {line_no}: we rejected a line the reference decided"
            ));
            continue;
        }
        let got_text = records.next().expect("a record for every decided line");
        let got = json::parse(got_text).expect("our records are JSON");
        if let Err(diff) = compare(&want, &got, "") {
            mismatches.push(format!("line {line_no}: {diff}"));
        }
    }
    assert!(records.next().is_none(), "more records than expected lines");
    assert_eq!(summary.events_seen, n_lines);
    assert!(
        mismatches.is_empty(),
        "{} of {n_lines} lines differ; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        summary.exit_code(),
        2,
        "the parity corpus has rejected lines"
    );
}
