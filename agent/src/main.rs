//! `scbe-agent`: parse flags, validate them into a config, run.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use scbe_agent::{control, logging, Args, Config};

fn main() -> ExitCode {
    // First, before any thread exists: every thread inherits the mask and
    // only the signal thread takes SIGTERM/SIGINT/SIGHUP/SIGUSR1.
    if let Err(err) = control::block_signals() {
        eprintln!("scbe-agent: error: cannot block signals: {err}");
        return ExitCode::from(1);
    }
    let args = Args::parse();
    logging::init(&args.log_format, &args.log_level);
    let result = Config::from_args(args).and_then(scbe_agent::run);
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("scbe-agent: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
