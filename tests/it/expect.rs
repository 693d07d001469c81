//! `expect` and `exit` in scripts: an armed expectation that a message
//! does not meet fails the script (at the prompt it prints the original's
//! report); `expect(None, T)` asserts that nothing arrives for T seconds;
//! `exit` ends a script, with its status.
//!
//! The device is a socket of the test's own, answering each request.

use std::net::UdpSocket;
use std::time::Duration;

use nsh::coap::{Code, Message, Type, udp};

use crate::harness::LiveNsh;

/// A device on a socket of its own, answering `n` requests with 2.05 and
/// then sending `extra` (if any) to nsh.
fn device(n: usize, extra: Option<Message>) -> (u16, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut nsh = None;
        for _ in 0..n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            nsh = Some(from);
            let req = udp::decode(&buf[..len]).unwrap();
            let mut content = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
            content.token = req.token;
            content.payload = b"t".to_vec();
            sock.send_to(&udp::encode(&content), from).unwrap();
        }
        if let (Some(m), Some(to)) = (extra, nsh) {
            std::thread::sleep(Duration::from_millis(200));
            sock.send_to(&udp::encode(&m), to).unwrap();
        }
    });
    (port, thread)
}

/// Runs the script `script(port)` makes, with a device on `port` that
/// answers one request, then sends `extra`.
fn with_device(
    extra: Option<Message>,
    script: impl FnOnce(u16) -> String,
) -> (Option<i32>, String, String) {
    let (port, dev) = device(1, extra);
    let ran = run(&script(port));
    dev.join().unwrap();
    ran
}

fn run(script: &str) -> (Option<i32>, String, String) {
    let nsh = LiveNsh::start(&["-l", "0", "-c", script]);
    let (status, out, err) = nsh.finish(60);
    (status.code(), out, err)
}

#[test]
fn an_armed_expectation_that_a_response_does_not_meet_fails_the_script() {
    let (code, out, err) = with_device(None, |port| {
        format!(
            r#"connect("127.0.0.1", {port});
expect("Update");
let r = coap_get("/x");
print("@@after the read");"#
        )
    });
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        err.contains("expect: a message did not match")
            && err.contains("kind: expected \"Update\""),
        "{err}"
    );
    assert!(!out.contains("@@after the read"), "{out}");
}

#[test]
fn a_mismatch_found_after_the_last_command_still_fails_the_script() {
    // The armed check is met by nothing until the script ends: the ping
    // arrives during the `sleep`, which is the script's last command.
    let ping = Message::new(Type::Confirmable, Code::EMPTY, 0x4242);
    let (code, out, err) = with_device(Some(ping), |port| {
        format!(
            r#"connect("127.0.0.1", {port});
coap_get("/x");
expect("Update");
sleep(1.0);"#
        )
    });
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("kind: expected \"Update\""), "{err}");
}

#[test]
fn expect_none_with_a_timeout_asserts_silence() {
    let (code, out, err) = with_device(None, |port| {
        format!(
            r#"connect("127.0.0.1", {port});
coap_get("/x");
expect("None", 0.5);
expect((), 0.5);
print("@@silent");"#
        )
    });
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("@@silent"), "{out}");

    let ping = Message::new(Type::Confirmable, Code::EMPTY, 0x4243);
    let (code, out, err) = with_device(Some(ping), |port| {
        format!(
            r#"connect("127.0.0.1", {port});
coap_get("/x");
expect("None", 3);
print("@@silent");"#
        )
    });
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        err.contains("expect: nothing was to arrive within 3.0 s")
            && err.contains("Empty CONFIRMABLE"),
        "{err}"
    );
    assert!(!out.contains("@@silent"), "{out}");
}

#[test]
fn exit_ends_a_script_with_its_status() {
    let (code, out, err) = run(r#"print("@@before"); exit(3); print("@@after");"#);
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(
        out.contains("@@before") && !out.contains("@@after"),
        "{out}"
    );
    let (code, out, err) = run(r#"print("@@before"); exit(); print("@@after");"#);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("@@before") && !out.contains("@@after"),
        "{out}"
    );
}
