//! Small helpers shared by the subcommands.

use std::path::Path;

use anyhow::{Context, Result};
use scbe_core::{parse_policy, Gate, Policy};

/// Load a policy file, or the reference policy when `path` is `None`.
pub fn load_policy(path: Option<&Path>) -> Result<Policy> {
    match path {
        None => Ok(Policy::reference()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read policy file {}", path.display()))?;
            parse_policy(&text).with_context(|| format!("in policy file {}", path.display()))
        }
    }
}

/// Load and compile a policy.
pub fn load_gate(path: Option<&Path>) -> Result<Gate> {
    let policy = load_policy(path)?;
    Gate::new(policy).context("policy does not compile")
}

/// Default worker count: every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `systemd,journald` → names, each checked against the known backends.
pub fn parse_backends(list: &str) -> Result<Vec<String>> {
    Ok(scbe_core::policy_toml::parse_backend_list(list)?)
}
