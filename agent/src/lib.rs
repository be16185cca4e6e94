//! `scbe-agent`: the SCBE kernel gate in production.
//!
//! Sources (stdin, a followed file, HTTP) feed a bounded [`queue`]; one
//! decision loop ([`engine`]) asks `scbe-core` — the same calls `scbe-sim
//! replay` makes — and hands the plans to enforcement backends ([`enforce`]:
//! signal, systemd, journald, soc) behind safety rails. The agent decides
//! nothing itself. [`app::run`] wires it together; `main` only parses flags.

pub mod app;
pub mod cli;
pub mod clock;
pub mod control;
pub mod durable;
pub mod enforce;
pub mod engine;
pub mod httpd;
pub mod intake;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod secret;
pub mod state;
pub mod summary;
pub mod wire;

pub use app::run;
pub use cli::{Args, Config};
