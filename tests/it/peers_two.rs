//! Two real clients at once: wakatiwai (Wakaama core, C) and coap-node
//! (JavaScript), registered with one nsh.

use crate::harness::run_with_peers;

#[test]
fn with_two_clients_every_record_names_the_endpoint_of_its_registration() {
    let run = run_with_peers(
        &[("waka.js", "waka-two"), ("coapnode.js", "coapnode-two")],
        "two_clients.rhai",
        &["waka-two", "coapnode-two"],
    );
    assert!(run.stdout.contains("<- Notify"), "{}", run.stdout);
    // The second registration takes the commands: a line says so, as the
    // prompt shown before it came still names the first.
    assert!(
        run.stdout
            .contains("commands now go to coapnode-two (127.0.0.1:")
            && run
                .stdout
                .contains("), the newest registration, not waka-two"),
        "{}",
        run.stdout
    );
    // Each forgotten observation gets a line saying why.
    assert!(
        run.stdout
            .contains("forgot the observation of /3303/0/5700 by waka-two")
            && run.stdout.contains("it registered again from"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("forgot the observation of /3303/0/5700 by coapnode-two")
            && run.stdout.contains("it de-registered"),
        "{}",
        run.stdout
    );
}
