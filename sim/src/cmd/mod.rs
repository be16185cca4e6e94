//! One module per subcommand: its flags and its `run`.

pub mod bench;
pub mod diff;
pub mod evaluate;
pub mod policy;
pub mod replay;
pub mod synth;
pub mod tune;
