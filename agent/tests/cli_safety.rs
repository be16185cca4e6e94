//! Flag combinations the agent refuses before it touches anything.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scbe-agent"))
}

#[test]
fn an_unauthenticated_intake_cannot_drive_process_backends() {
    for backends in ["signal", "systemd", "signal,journald"] {
        let out = agent()
            .args(["--listen", "127.0.0.1:0", "--apply-enforcement"])
            .args(["--enforcement-backends", backends])
            .env_remove("SCBE_LISTEN_SECRET")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{backends}: must refuse to start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("needs a shared secret"),
            "{backends}: {stderr}"
        );
    }
}

#[test]
fn the_default_apply_backends_also_need_a_secret_with_listen() {
    // Applying with the reference's default list uses the signal backend.
    let out = agent()
        .args(["--listen", "127.0.0.1:0", "--apply-enforcement"])
        .env_remove("SCBE_LISTEN_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen-allow-unauthenticated"));
}
