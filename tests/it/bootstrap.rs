//! Bootstrap against a real client (wakatiwai): Request-Bootstrap, the
//! `bootstrap` command's Writes and Finish, then the client's Register.

use std::cell::RefCell;
use std::time::Duration;

use crate::harness::{Peer, free_udp_port, run_nsh, script};

#[test]
fn wakatiwai_bootstraps_from_nsh_and_registers_to_the_server_it_wrote() {
    let port = free_udp_port();
    let p = port.to_string();
    let peer: RefCell<Option<Peer>> = RefCell::new(None);
    let script = script("bootstrap_e2e.rhai");
    let run = run_nsh(
        &["-l", &p, &script, "waka-bs", &p],
        Duration::from_secs(90),
        |line| {
            if line.contains("@@start-peer") {
                *peer.borrow_mut() = Some(Peer::node(
                    "waka.js",
                    port,
                    "waka-bs",
                    &[("BOOTSTRAP", "1")],
                ));
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
    assert!(
        run.stdout.contains("-> Write /0: APPLICATION_LWM2M_TLV"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-> Bootstrap Finish /bs"),
        "{}",
        run.stdout
    );
}
