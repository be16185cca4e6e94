//! Guards on the dependency graph that correctness relies on.

/// The scan's literal filter (`core/src/litscan.rs`) analyses patterns with
/// `regex-syntax` and trusts that `regex` parses them the same way. That holds
/// only while both use one copy of `regex-syntax`: two versions in the lock
/// file could parse a pattern differently and make the filter skip a
/// pattern that matches.
#[test]
fn one_regex_syntax_for_the_scan_and_the_regex_engine() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock is committed");
    let copies = lock
        .lines()
        .filter(|line| line.trim() == "name = \"regex-syntax\"")
        .count();
    assert_eq!(copies, 1, "Cargo.lock must hold exactly one regex-syntax");
}
