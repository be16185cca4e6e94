//! Parallel replay is byte-identical to sequential replay.

use crate::support::{parity_config, replay_file, shared_dir};

#[test]
fn parity_corpus_digest_is_the_same_at_1_2_and_7_threads() {
    let Some(shared) = shared_dir("determinism") else {
        return;
    };
    let corpus = shared.join("parity/corpus.jsonl");
    let digests: Vec<_> = [1, 2, 7]
        .into_iter()
        .map(|threads| {
            let (_, errors, summary) = replay_file(&corpus, &parity_config(threads));
            (summary.output_sha256.clone().unwrap(), errors)
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

/// A generated mixed corpus of 100,000 events with a state table small
/// enough that eviction is exercised: the output digest must not depend on
/// the thread count.
#[test]
fn generated_corpus_digest_is_the_same_at_1_2_and_7_threads() {
    use scbe_sim::synth::{synth, SynthConfig};

    let mut corpus = Vec::new();
    synth(
        &SynthConfig {
            seed: 2026,
            events: 100_000,
            attack_ratio: 0.05,
            hosts: 64,
        },
        &mut corpus,
    )
    .expect("synth writes to memory");
    let mut policy = scbe_core::Policy::reference();
    // The minimum table (1,000 keys) is far below the corpus's key count.
    policy.max_state_entries = 1;
    let run = |threads: usize| {
        let config = crate::support::config(policy.clone(), threads, true);
        let corpus = scbe_sim::input::Corpus {
            live: false,
            reader: Box::new(std::io::Cursor::new(corpus.clone())),
            total_bytes: None,
            bytes_read: Default::default(),
            name: "synth".into(),
        };
        let mut out = Vec::new();
        let summary = scbe_sim::replay::replay(&config, corpus, &mut out, &mut std::io::sink())
            .expect("replay runs");
        assert_eq!(summary.events_seen, 100_000);
        assert!(
            summary.state_evictions > 0,
            "the table must overflow to test eviction"
        );
        summary.output_sha256.expect("digest requested")
    };
    let one = run(1);
    assert_eq!(one, run(2), "2 threads");
    assert_eq!(one, run(7), "7 threads");
}
