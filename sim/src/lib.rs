//! `scbe-sim`: replay Falco corpora through the SCBE gate, deterministically
//! and in parallel; generate, evaluate, tune and diff policies.

pub mod bench;
pub mod diff;
pub mod evaluate;
pub mod input;
pub mod label;
pub mod labelled;
pub mod output;
pub mod progress;
pub mod replay;
pub mod rng;
pub mod synth;
pub mod tune;
pub mod util;
