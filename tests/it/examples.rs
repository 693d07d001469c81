//! Every script in scripts/ runs against a real client (wakatiwai).

use std::time::Duration;

use crate::harness::{Peer, listening_port, repo, run_nsh};

fn run_example(name: &str, args: &[&str], expect: &[&str]) {
    let script = repo().join("scripts").join(name).display().to_string();
    let mut argv = vec!["-l", "0", script.as_str()];
    argv.extend_from_slice(args);
    // nsh prints the port it bound before the script runs: the client
    // starts on it.
    let mut peer = None;
    let run = run_nsh(&argv, Duration::from_secs(90), |line| {
        if let (None, Some(port)) = (&peer, listening_port(line)) {
            peer = Some(Peer::node(
                "waka.js",
                port,
                "example-ep",
                &[("TEMP_MS", "300")],
            ));
        }
    });
    drop(peer);
    run.assert_ok();
    for e in expect {
        assert!(run.stdout.contains(e), "missing {e:?} in\n{}", run.stdout);
    }
}

#[test]
fn read_device_example_prints_the_device_object() {
    run_example(
        "read_device.rhai",
        &["30"],
        &[
            "registered: example-ep",
            "manufacturer: nsh-test",
            "Manufacturer",
        ],
    );
}

#[test]
fn observe_example_collects_notifications_and_cancels() {
    run_example(
        "observe.rhai",
        &["/3303/0/5700", "2", "1"],
        &["notification 2:", "collected 2 notifications"],
    );
}

#[test]
fn write_read_back_example_round_trips_a_value() {
    run_example(
        "write_read_back.rhai",
        &["/3303/0/5750", "hello"],
        &["/3303/0/5750 after: hello"],
    );
}

#[test]
fn firmware_update_example_pushes_a_package_block_by_block_and_updates() {
    let file = std::env::temp_dir().join(format!("nsh-fw-{}.bin", std::process::id()));
    std::fs::write(
        &file,
        (0..3000u32).map(|i| (i % 241) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    run_example(
        "firmware_update.rhai",
        &[file.to_str().unwrap(), "30"],
        &[
            "runs firmware 1.0.0",
            "write_file: 2048/3000 bytes",
            "package downloaded",
            "updated: firmware 1.0.0 -> 2.0.0",
        ],
    );
    let _ = std::fs::remove_file(&file);
}
