//! The prompt under a pseudo-terminal: completion, multi-line blocks,
//! messages printed while a line is half typed, Ctrl-C during `recv`.

use std::net::UdpSocket;
use std::time::Duration;

use rexpect::session::{PtySession, spawn_command};

use crate::harness::{free_udp_port, nsh_bin};

/// Types text without Enter.
fn send(p: &mut PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

fn start() -> PtySession {
    let mut cmd = std::process::Command::new(nsh_bin());
    cmd.env(
        "NSH_HISTORY",
        std::env::temp_dir().join(format!("nsh-hist-{}", std::process::id())),
    );
    cmd.env("TERM", "xterm");
    let mut p = spawn_command(cmd, Some(10_000)).expect("spawn nsh in a pty");
    p.exp_string("[nsh] $ ").expect("first prompt");
    p
}

#[test]
fn tab_completes_command_names() {
    let mut p = start();
    send(&mut p, "payload_buffer_sh");
    send(&mut p, "\t");
    send(&mut p, "\t");
    p.exp_string("payload_buffer_show_hex")
        .expect("candidates listed");
    p.send_control('c').unwrap();
    p.exp_string("$ ").unwrap();
    // The editor drops type-ahead while it resets after Ctrl-C.
    std::thread::sleep(Duration::from_millis(300));
    // A unique prefix completes: running the line proves the word was completed.
    send(&mut p, "discov\t");
    std::thread::sleep(Duration::from_millis(200));
    send(&mut p, "\r");
    p.exp_string("discover: missing value for `path`")
        .expect("unique completion");
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_multi_line_block_runs_when_closed() {
    let mut p = start();
    p.send_line("for i in 0..3 {").unwrap();
    p.send_line("  print(\"line \" + i);").unwrap();
    p.send_line("}").unwrap();
    p.exp_string("line 0").unwrap();
    p.exp_string("line 2").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_message_arriving_while_typing_prints_above_the_line() {
    let mut p = start();
    let port = free_udp_port();
    p.send_line(&format!("listen {port}")).unwrap();
    p.exp_string(&format!("listening on UDP port {port}"))
        .unwrap();
    p.exp_string("$ ").unwrap();
    send(&mut p, "discov");
    p.exp_string("discov").unwrap();
    // A CoAP ping from a "client": printed, answered with RST.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .send_to(&[0x40, 0x00, 0x12, 0x34], ("127.0.0.1", port))
        .unwrap();
    p.exp_string("<- Empty CONFIRMABLE, msg_id = 4660").unwrap();
    p.exp_string("-> Reset, msg_id = 4660").unwrap();
    // The half-typed line is still there: finishing it completes the word.
    p.exp_string("discov")
        .expect("line redrawn after the message");
    send(&mut p, "er /3\r");
    p.exp_string("discover: no client to send to").unwrap();
    let mut buf = [0u8; 16];
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x70, 0x00, 0x12, 0x34]);
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_interrupts_a_waiting_recv_and_returns_to_the_prompt() {
    let mut p = start();
    let port = free_udp_port();
    p.send_line(&format!("listen {port}")).unwrap();
    p.exp_string("listening").unwrap();
    p.send_line("recv 60").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").expect("recv interrupted");
    p.send_line("print(\"still here\")").unwrap();
    p.exp_string("still here").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}
