//! Snapshots of the decision stream for small hand-written corpora.

use scbe_core::Policy;

use crate::support::{config, replay_file, root};

fn snapshot_of(name: &str) -> String {
    let path = root().join("corpora/examples").join(name);
    let (out, errors, summary) = replay_file(&path, &config(Policy::reference(), 2, true));
    format!(
        "# records\n{out}# errors\n{errors}# summary\nevents_seen={} decided={} errors={} blank={} lines={}\n",
        summary.events_seen, summary.decided, summary.errors, summary.blank_lines, summary.lines_read
    )
}

#[test]
fn clean_workload_decisions() {
    insta::assert_snapshot!(snapshot_of("clean-workload.jsonl"));
}

#[test]
fn attack_chain_decisions() {
    insta::assert_snapshot!(snapshot_of("attack-chain.jsonl"));
}

#[test]
fn malformed_lines_are_reported_and_the_run_goes_on() {
    insta::assert_snapshot!(snapshot_of("malformed-lines.jsonl"));
}
