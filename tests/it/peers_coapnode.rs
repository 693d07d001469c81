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
