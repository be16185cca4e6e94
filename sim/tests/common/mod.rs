//! Helpers shared by the command-line tests.

use std::path::PathBuf;
use std::process::Command;

/// The `scbe-sim` binary under test.
pub fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scbe-sim"))
}

/// A file of `corpora/examples`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/examples")
        .join(name)
}
