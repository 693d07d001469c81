//! Bootstrap against a real client (wakatiwai): Request-Bootstrap, the
//! `bootstrap` command's Writes and Finish, then the client's Register.

use crate::harness::run_with_peer;

#[test]
fn wakatiwai_bootstraps_from_nsh_and_registers_to_the_server_it_wrote() {
    let run = run_with_peer(
        "waka.js",
        "waka-bs",
        &[("BOOTSTRAP", "1")],
        "bootstrap_e2e.rhai",
        &["waka-bs"],
    );
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
