//! The `meshlog` binary's key and argument handling. (Being an integration test of this
//! package also makes `cargo test` build the binary that the `meshlog-tests` process tests run.)

use std::process::Command;

const MESHLOG: &str = env!("CARGO_BIN_EXE_meshlog");

#[test]
fn community_new_writes_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let run = || {
        Command::new(MESHLOG)
            .args(["community", "new", "--devices", "alice,bob", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let community = meshlog_backend::keys::load_community(&out).unwrap();
    assert_eq!(community.members().count(), 2);
    let alice = meshlog_backend::keys::load_device(&out, "alice").unwrap();
    assert_eq!(community.member(&alice.device), Some(&alice.public()));

    let again = run();
    assert!(
        !again.status.success(),
        "existing keys are never overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    let unchanged = meshlog_backend::keys::load_community(&out).unwrap();
    assert_eq!(unchanged.key(), community.key());
}

#[test]
fn device_refuses_a_malformed_peer() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(MESHLOG)
        .args([
            "device",
            "--name",
            "alice",
            "--peer",
            "bob-without-address",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NAME@HOST:PORT"));
}
