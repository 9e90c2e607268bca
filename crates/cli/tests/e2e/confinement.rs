//! The hub confines its own file-system access (Landlock) and says how in one line; the
//! shipped systemd unit keeps its sandboxing options.

use super::support::{serve_with, serve_with_env};
use std::path::Path;
use std::process::{Command, Stdio};

/// The line `serve` printed about its confinement.
fn confinement_line(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| l.contains("onfined"))
        .cloned()
        .unwrap_or_else(|| panic!("no confinement line in {lines:#?}"))
}

#[test]
fn serve_confines_itself_to_its_data_files_root_and_temp_dir_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let files = root.path().join("files");
    let tmp = root.path().join("tmp");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    // TMPDIR names the one temporary directory the hub may use (SQLite's scratch files).
    let server = serve_with_env(
        &data,
        &["--files-root", files.to_str().unwrap()],
        "info",
        Stdio::null(),
        &[("TMPDIR", &tmp)],
    );
    let line = confinement_line(&server.stdout);
    if line.starts_with("Not confined") {
        // A kernel without Landlock: the hub still runs and says why it is not confined.
        assert!(line.contains("Landlock"), "{line}");
        return;
    }
    assert!(line.starts_with("Confined by Landlock (V"), "{line}");
    let data = std::path::absolute(&data).unwrap();
    let files = std::path::absolute(&files).unwrap();
    assert!(
        line.contains(&format!("read-write {}, {}", data.display(), tmp.display())),
        "{line}"
    );
    assert!(
        line.contains(&format!("files {};", files.display())),
        "{line}"
    );
    // The same line is in the log file.
    let logs = std::fs::read_dir(data.join("logs")).unwrap();
    let text: String = logs
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(
        text.contains("\"confinement\":\"Confined by Landlock"),
        "{text}"
    );
}

#[test]
fn no_confine_leaves_the_hub_unconfined_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let server = serve_with(
        &root.path().join("data"),
        &["--no-confine"],
        "warn",
        Stdio::null(),
    );
    let line = confinement_line(&server.stdout);
    assert!(line.starts_with("Not confined: --no-confine"), "{line}");
}

/// The options the README promises; `systemd-analyze verify` checks the whole unit where it is
/// installed.
#[test]
fn the_systemd_unit_is_sandboxed_and_valid() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/lockstep.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    for option in [
        "DynamicUser=yes",
        "StateDirectory=lockstep",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self",
        "ExecStart=/usr/local/bin/lockstep serve --data /var/lib/lockstep",
    ] {
        assert!(has(option), "dist/lockstep.service lacks {option}");
    }
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|o| o.status.success()) {
        return;
    }
    // Verify a copy that starts the binary under test (verify checks the command exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("lockstep.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/lockstep", super::support::BIN),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}
