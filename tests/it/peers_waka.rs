//! End-to-end against the wakatiwai client (Wakaama core, LwM2M 1.0, C).

use std::cell::RefCell;
use std::time::Duration;

use crate::harness::{Peer, free_udp_port, run_nsh, script};

/// Runs tests/scripts/peer_e2e.rhai with `driver` as the client.
pub fn run_e2e(driver: &str, endpoint: &str, writable: &str, observed: &str) {
    let port = free_udp_port();
    let port_s = port.to_string();
    let peer: RefCell<Option<Peer>> = RefCell::new(None);
    let script = script("peer_e2e.rhai");
    let run = run_nsh(
        &["-l", &port_s, &script, endpoint, writable, observed],
        Duration::from_secs(120),
        |line| {
            if line.contains("@@start-peer") {
                *peer.borrow_mut() =
                    Some(Peer::node(driver, port, endpoint, &[("TEMP_MS", "300")]));
            } else if line.contains("@@stop-peer")
                && let Some(p) = peer.borrow().as_ref()
            {
                p.terminate();
            }
        },
    );
    drop(peer);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
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
