//! nsh restarting under a registered real client: the client's Update to a
//! location the new nsh never handed out is answered 4.04 Not Found, and
//! the client registers again at once (LwM2M Core §6.2.2).

use std::time::Duration;

use crate::harness::{Peer, free_udp_port, run_nsh, script};

#[test]
fn wakatiwai_registers_again_after_nsh_restarts() {
    let port = free_udp_port();
    let p = port.to_string();
    let endpoint = "waka-restart";
    let peer = std::cell::RefCell::new(None);
    // A short lifetime, so the client's first Update comes within seconds.
    // Wakaama answers a failed Update by leaving the registered state (its
    // process ends: no bootstrap server), and wakatiwai starts it again
    // after RECONNECT_S; it then registers anew.
    let env = [
        ("LIFETIME", "6"),
        ("TEMP_MS", "60000"),
        ("RECONNECT_S", "1"),
    ];
    let first = run_nsh(
        &["-l", &p, &script("restart.rhai"), "first"],
        Duration::from_secs(60),
        |line| {
            if line.contains("@@listening") && peer.borrow().is_none() {
                *peer.borrow_mut() = Some(Peer::node("waka.js", port, endpoint, &env));
            }
        },
    );
    first.assert_ok();
    assert!(
        first.stdout.contains("@@registered waka-restart"),
        "{}",
        first.stdout
    );
    // The client lives on; a new nsh takes the port.
    let second = run_nsh(
        &["-l", &p, &script("restart.rhai"), "second", endpoint],
        Duration::from_secs(90),
        |_| {},
    );
    drop(peer);
    second.assert_ok();
    assert!(
        second.stdout.contains("unknown registration location"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("@@reregistered"),
        "{}",
        second.stdout
    );
}
