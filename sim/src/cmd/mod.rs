//! One module per subcommand: its flags and its `run`.

pub mod policy;
pub mod replay;
pub mod synth;
