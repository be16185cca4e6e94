//! Integration tests: the gate and replay exercised through their public APIs
//! on real and hand-written corpora.

mod determinism;
mod hostile;
mod lockfile;
mod parity;
mod properties;
mod real_corpora;
mod snapshots;
mod support;
