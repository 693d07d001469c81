//! End-to-end against the wakatiwai client (Wakaama core, LwM2M 1.0, C).

use crate::harness::run_with_peer;

/// Runs tests/scripts/peer_e2e.rhai with `driver` as the client.
pub fn run_e2e(driver: &str, endpoint: &str, writable: &str, observed: &str) {
    let run = run_with_peer(
        driver,
        endpoint,
        &[("TEMP_MS", "300")],
        "peer_e2e.rhai",
        &[endpoint, writable, observed],
    );
    assert!(run.stdout.contains("<- Register /rd?"), "{}", run.stdout);
    assert!(run.stdout.contains("-> Created /rd/"), "{}", run.stdout);
    assert!(run.stdout.contains("TLV (1 elements):"), "{}", run.stdout);
    assert!(
        run.stdout.contains("resource 0 = b'nsh-test'"),
        "{}",
        run.stdout
    );
}

#[test]
fn wakatiwai_registers_and_a_script_reads_writes_observes_and_sees_it_leave() {
    run_e2e("waka.js", "waka-e2e", "/3303/0/5750", "/3303/0/5700");
}
