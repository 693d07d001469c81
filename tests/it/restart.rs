//! nsh restarting under a registered real client: the client's Update to a
//! location the new nsh never handed out is answered 4.04 Not Found, and
//! the client registers again at once (LwM2M Core §6.2.2).

use std::time::Duration;

use crate::harness::{Peer, listening_port, run_nsh, script};

#[test]
fn wakatiwai_registers_again_after_nsh_restarts() {
    let mut port = 0;
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
        &["-l", "0", &script("restart.rhai"), "first"],
        Duration::from_secs(60),
        |line| {
            if let Some(p) = listening_port(line) {
                port = p;
            } else if line.contains("@@listening") && peer.borrow().is_none() {
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
    let p = port.to_string();
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
