//! Parallel replay is byte-identical to sequential replay.

use crate::support::{parity_config, replay_file, shared_dir};

#[test]
fn parity_corpus_digest_is_the_same_at_1_2_and_7_threads() {
    let Some(shared) = shared_dir("determinism") else { return };
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
