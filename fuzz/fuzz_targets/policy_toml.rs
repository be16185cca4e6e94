//! The policy TOML parser. Invariants: no panic; a rejected policy has a
//! message; a parsed policy validates, writes back to TOML that parses to
//! the same policy, and compiles into a gate (or says why not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scbe_core::policy_toml::validate;
use scbe_core::{parse_policy, policy_to_toml, Gate, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match parse_policy(text) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "empty policy error");
            return;
        }
    };
    if let Err(e) = validate(&policy) {
        panic!("parse_policy returned a policy that fails validation: {e}");
    }
    let written = policy_to_toml(&policy, "fuzz round trip");
    match parse_policy(&written) {
        Ok(back) => assert_eq!(back, policy, "policy changed through TOML:\n{written}"),
        Err(e) => panic!("a parsed policy does not read back: {e}\n{written}"),
    }
    // Compiling regexes is the slow part; only do it when patterns changed.
    let reference = Policy::reference();
    if policy.scan != reference.scan || policy.integrity != reference.integrity {
        if let Err(e) = Gate::new(policy) {
            assert!(!e.to_string().is_empty(), "empty gate error");
        }
    }
});
