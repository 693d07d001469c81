//! End-to-end against coap-node (LwM2M 1.0, JavaScript).

#[test]
fn coap_node_registers_and_a_script_reads_writes_observes_and_sees_it_leave() {
    crate::peers_waka::run_e2e(
        "coapnode.js",
        "coapnode-e2e",
        "/3303/0/5750",
        "/3303/0/5700",
    );
}

/// coap-node sends each Update from a new source port, while its
/// notifications keep coming from the port it registered from: those still
/// name its registration, and count as heard from it.
#[test]
fn coap_node_notifications_from_its_first_port_still_name_it_after_an_update_moved_it() {
    use crate::harness::{Peer, listening_port, run_nsh, script};
    use std::time::Duration;

    let endpoint = "coapnode-ports";
    let mut port = 0;
    let peer = std::cell::RefCell::new(None);
    // A short lifetime, so the first Update comes within seconds; a
    // notification every 300 ms.
    let env = [("LIFETIME", "10"), ("TEMP_MS", "300")];
    let run = run_nsh(
        &["-l", "0", &script("coapnode_ports.rhai"), endpoint],
        Duration::from_secs(90),
        |line| {
            if let Some(p) = listening_port(line) {
                port = p;
            } else if line.contains("@@listening") && peer.borrow().is_none() {
                *peer.borrow_mut() = Some(Peer::node("coapnode.js", port, endpoint, &env));
            }
        },
    );
    drop(peer);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}
