//! The prompt under a pseudo-terminal: completion, multi-line blocks,
//! lines typed ahead and pasted, messages printed while a line is half
//! typed, Ctrl-C during `recv`.
//!
//! No fixed sleeps: each keystroke waits for what nsh shows once it is
//! ready for it (the prompt, a completed word, a marker printed by the
//! command), except where typing ahead is what is tested.
//! nsh listens on port 0 and the test reads the port from its `listening
//! on UDP port N` line.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rexpect::session::{PtySession, spawn_command};

use crate::harness::nsh_bin;

/// Types text without Enter.
fn send(p: &mut PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

fn start() -> PtySession {
    // A history file per session: the tests run in parallel.
    static SESSIONS: AtomicUsize = AtomicUsize::new(0);
    let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
    let mut cmd = std::process::Command::new(nsh_bin());
    cmd.env(
        "NSH_HISTORY",
        std::env::temp_dir().join(format!("nsh-hist-{}-{n}", std::process::id())),
    );
    cmd.env("TERM", "xterm");
    // 30 s per expectation: the suite runs many of these beside heavy tests.
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn nsh in a pty");
    p.exp_string("[nsh] $ ").expect("first prompt");
    p
}

/// Waits for the prompt (`[nsh] $ `, or with a status before the `$`).
fn prompt(p: &mut PtySession) {
    p.exp_string("$ ").expect("the prompt");
}

/// At the prompt: types `exit` and waits for nsh to end.
fn exit(p: &mut PtySession) {
    prompt(p);
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

/// Runs `listen 0 wait=0` and returns the port nsh bound.
fn listen_any(p: &mut PtySession) -> u16 {
    p.send_line("listen 0 wait=0").unwrap();
    let (_, line) = p
        .exp_regex(r"listening on UDP port \d+\r?\n")
        .expect("the listening line");
    // Up to the line's end, so the number is not cut short.
    let port = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "{line}");
    prompt(p);
    port
}

#[test]
fn tab_completes_command_names() {
    let mut p = start();
    send(&mut p, "payload_buffer_sh");
    send(&mut p, "\t");
    send(&mut p, "\t");
    p.exp_string("payload_buffer_show_hex")
        .expect("candidates listed");
    // The list is followed by the prompt redrawn with the common prefix;
    // take it, so the prompt waited for next is the one after Ctrl-C.
    p.exp_string("[nsh] $ payload_buffer_show")
        .expect("line redrawn below the candidates");
    p.send_control('c').unwrap();
    // The editor drops type-ahead until it shows the new prompt.
    p.exp_string("[nsh] $ ")
        .expect("a fresh prompt after Ctrl-C");
    // A unique prefix completes: running the line proves the word was completed.
    send(&mut p, "discov\t");
    p.exp_string("[nsh] $ discover")
        .expect("the word completed");
    send(&mut p, "\r");
    p.exp_string("discover: missing value for `path`")
        .expect("unique completion");
    exit(&mut p);
}

#[test]
fn a_multi_line_block_runs_when_closed() {
    let mut p = start();
    p.send_line("for i in 0..3 {").unwrap();
    p.send_line("  print(\"line \" + i);").unwrap();
    p.send_line("}").unwrap();
    p.exp_string("line 0").unwrap();
    p.exp_string("line 2").unwrap();
    exit(&mut p);
}

#[test]
fn lines_typed_while_a_command_runs_all_run_in_order() {
    // Typed ahead while `sleep` runs, in one burst: none is lost. (The
    // markers are computed, so the terminal's echo of the typed text does
    // not match them.)
    let mut p = start();
    p.send_line("sleep(1.0)").unwrap();
    send(
        &mut p,
        "print(\"@@\" + \"one\")\rprint(\"@@\" + \"two\")\rprint(\"@@\" + \"three\")\r",
    );
    p.exp_string("@@one").expect("the first line typed ahead");
    p.exp_string("@@two").expect("the second line typed ahead");
    p.exp_string("@@three").expect("the third line typed ahead");
    exit(&mut p);
}

#[test]
fn lines_pasted_at_once_run_one_after_another() {
    // A terminal's bracketed paste of three command lines, then Enter:
    // each line runs as if typed, a block left open spans lines.
    let mut p = start();
    send(
        &mut p,
        "\x1b[200~print(\"@@\" + \"p1\")\nfor i in 0..2 {\n  print(\"@@loop\" + i);\n}\nprint(\"@@\" + \"p2\")\x1b[201~\r",
    );
    p.exp_string("@@p1").expect("the first pasted line");
    p.exp_string("@@loop1").expect("the pasted block");
    p.exp_string("@@p2").expect("the last pasted line");
    exit(&mut p);
}

#[test]
fn a_message_arriving_while_typing_prints_above_the_line() {
    let mut p = start();
    let port = listen_any(&mut p);
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
    exit(&mut p);
}

#[test]
fn ctrl_c_interrupts_a_waiting_recv_and_returns_to_the_prompt() {
    let mut p = start();
    listen_any(&mut p);
    // Ctrl-C must come once the line runs: the editor has then left raw
    // mode (the terminal turns Ctrl-C into SIGINT), and the interrupt flag,
    // cleared when a line starts, stays set until it is seen. The marker
    // is split so that the echo of the typed line does not match. No
    // output says `recv` has begun to wait: a Ctrl-C that lands between
    // the marker and `recv` stops the script there instead ("Script
    // terminated"), and the line is tried again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        p.send_line("print(\"@@recv \" + \"started\"); recv(60)")
            .unwrap();
        p.exp_string("@@recv started").expect("the line runs");
        p.send_control('c').unwrap();
        let (_, seen) = p
            .exp_regex("interrupted|Script terminated")
            .expect("the line interrupted");
        prompt(&mut p);
        if seen == "interrupted" {
            break;
        }
        assert!(attempts < 20, "Ctrl-C never reached a waiting recv");
    }
    // Split, so that the echo of the typed line does not match.
    p.send_line("print(\"still \" + \"here\")").unwrap();
    p.exp_string("still here").unwrap();
    exit(&mut p);
}

#[test]
fn a_unique_prefix_runs_its_command_and_an_ambiguous_one_lists_them() {
    let mut p = start();
    p.send_line("payload_buffer_show_h").unwrap();
    p.exp_string("* prefix: payload_buffer_show_hex")
        .expect("the prefix resolved");
    prompt(&mut p);
    p.send_line("ex").unwrap();
    p.exp_string("ambiguous command: ex (possible: execute exit expect)")
        .expect("the candidates listed");
    exit(&mut p);
}

/// A client that answers one request with a SenML CBOR Content
/// (`/3/0/0` "ACME", `/1/1/1` 300), as a Read-Composite expects.
fn answer_one_composite_read(client: UdpSocket) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // Longer than the prompt's own expectations: under load the
        // request can come late, and a responder gone by then fails the
        // test for the wrong reason.
        client
            .set_read_timeout(Some(Duration::from_secs(90)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let Ok((n, from)) = client.recv_from(&mut buf) else {
            return;
        };
        let req = nsh::coap::udp::decode(&buf[..n]).unwrap();
        let tkl = req.token.len() as u8;
        let mut resp = vec![0x60 | tkl, 0x45];
        resp.extend_from_slice(&req.message_id.to_be_bytes());
        resp.extend_from_slice(&req.token);
        resp.extend_from_slice(&[0xc1, 112, 0xff]);
        resp.extend_from_slice(&[0x82, 0xa2, 0x00, 0x66]);
        resp.extend_from_slice(b"/3/0/0");
        resp.extend_from_slice(&[0x03, 0x64]);
        resp.extend_from_slice(b"ACME");
        resp.extend_from_slice(&[0xa2, 0x00, 0x66]);
        resp.extend_from_slice(b"/1/1/1");
        resp.extend_from_slice(&[0x02, 0x19, 0x01, 0x2c]);
        client.send_to(&resp, from).unwrap();
    })
}

#[test]
fn a_message_value_shows_its_summary_and_decoded_values() {
    let mut p = start();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = client.local_addr().unwrap().port();
    let responder = answer_one_composite_read(client);
    p.send_line(&format!("connect 127.0.0.1 {port}")).unwrap();
    // The echo of the typed line holds "$ " too: wait for what `connect`
    // prints before taking the prompt that follows it.
    p.exp_string("new remote endpoint").expect("connect's line");
    prompt(&mut p);
    p.send_line("read_composite([\"/3/0/0\", \"/1/1/1\"])")
        .unwrap();
    p.exp_string("  /3/0/0 Manufacturer = \"ACME\"")
        .expect("the first value, named");
    p.exp_string("  /1/1/1 Lifetime = 300")
        .expect("the second value, named");
    responder.join().unwrap();
    exit(&mut p);
}

#[test]
fn listen_at_the_prompt_waits_for_the_first_client_like_the_original() {
    let mut p = start();
    p.send_line("listen 0").unwrap();
    let (_, line) = p
        .exp_regex(r"listening on UDP port \d+\r?\n")
        .expect("the listening line");
    let port: u16 = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    p.exp_string("waiting for a client on port").unwrap();
    // No prompt until a client talks: its Register is shown and answered,
    // and the next command goes to it.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let register = [
        &[
            0x44, 0x02, 0x12, 0x34, 0xaa, 0xbb, 0xcc, 0xdd, 0xb2, b'r', b'd',
        ][..],
        &[0x47, b'e', b'p', b'=', b'w', b'a', b'i', b't'][..],
        &[0xff][..],
        b"</3/0>",
    ]
    .concat();
    client.send_to(&register, ("127.0.0.1", port)).unwrap();
    p.exp_string("<- Register /rd?ep=wait").unwrap();
    p.exp_string("-> Created /rd/1").unwrap();
    prompt(&mut p);
    p.send_line("print(clients()[0].endpoint + \"@@\")")
        .unwrap();
    p.exp_string("wait@@").unwrap();
    // Ctrl-C stops a wait; nsh keeps listening.
    prompt(&mut p);
    p.send_line("listen 0").unwrap();
    p.exp_string("waiting for a client on port").unwrap();
    let mut attempts = 0;
    loop {
        attempts += 1;
        p.send_control('c').unwrap();
        if p.exp_string("stopped waiting; still listening on port")
            .is_ok()
        {
            break;
        }
        assert!(attempts < 20, "Ctrl-C never stopped the wait");
    }
    exit(&mut p);
}

#[test]
fn tab_completes_functions_and_variables_defined_at_the_prompt() {
    let mut p = start();
    p.send_line("fn reboot_and_wait_zq(t) { t * 2 }").unwrap();
    prompt(&mut p);
    p.send_line("let threshold_zq = 21;").unwrap();
    prompt(&mut p);
    // A unique prefix of the function completes as the first word.
    send(&mut p, "reboot_and_w\t");
    p.exp_string("reboot_and_wait_zq")
        .expect("the prompt-defined function completed");
    send(&mut p, "(threshold_z\t");
    p.exp_string("threshold_zq")
        .expect("the prompt-defined variable completed");
    send(&mut p, ")\r");
    p.exp_string("42").expect("the completed line ran");
    exit(&mut p);
}

/// A prompt that opened a CoAP-over-TCP connection to the server at
/// `port` (`connect … tcp=1`).
fn start_connected_over_tcp(port: u16) -> PtySession {
    let mut p = start();
    p.send_line(&format!("connect 127.0.0.1 {port} tcp=1"))
        .unwrap();
    p.exp_string(&format!("TCP connection to 127.0.0.1:{port} established"))
        .expect("the connection line");
    p
}

/// `connect … tcp=1` to libcoap's `coap-server-notls` puts the peer in the
/// prompt; a `listen` after it opens a new socket, and the TCP connection
/// went with the old one: the prompt no longer names the peer.
#[test]
fn listen_after_a_tcp_connect_drops_the_peer_from_the_prompt() {
    let (server, port) = crate::libcoap::libcoap_server_on("TCP");
    let mut p = start_connected_over_tcp(port);
    p.exp_string(&format!("client: 127.0.0.1:{port} $ "))
        .expect("the prompt naming the peer");
    p.send_line("listen 0 wait=0").unwrap();
    p.exp_string(&format!(
        "commands no longer go to 127.0.0.1:{port}: its TCP connection closed with the old socket"
    ))
    .expect("the line saying so");
    let (_, line) = p
        .exp_regex(r"listening on UDP port \d+\r?\n")
        .expect("the listening line");
    let new_port: u16 = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    p.exp_string(&format!("[nsh] port: {new_port} $ "))
        .expect("the prompt without the peer of the old socket");
    drop(server);
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

/// `connect … tcp=1` to libcoap's `coap-server-notls`, which then goes
/// away (killed: its system closes the connection): the peer leaves the
/// prompt, a line says why, and a request typed after it fails at once
/// with the connection's fate and when it came, not as if nothing had
/// ever been connected.
#[test]
fn a_tcp_peer_that_closes_its_connection_leaves_the_prompt() {
    let (server, port) = crate::libcoap::libcoap_server_on("TCP");
    let mut p = start_connected_over_tcp(port);
    let (_, status) = p
        .exp_regex(&format!(r"port: \d+, client: 127\.0\.0\.1:{port} \$ "))
        .expect("the prompt naming the peer");
    let own: u16 = status
        .trim_start_matches("port: ")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    drop(server);
    p.exp_string(&format!(
        "commands no longer go to 127.0.0.1:{port}: the TCP connection with 127.0.0.1:{port} closed: closed by the peer"
    ))
    .expect("the line saying the peer is no longer the target");
    p.send_line("").unwrap();
    p.exp_string(&format!("[nsh] port: {own} $ "))
        .expect("the prompt without the peer");
    p.send_line("read /3/0").unwrap();
    p.exp_regex(&format!(
        r"read: no client to send to: the TCP connection with 127\.0\.0\.1:{port} closed at \d\d:\d\d:\d\d UTC \(\d+\.\d s ago\): closed by the peer; `connect` opens a new one"
    ))
    .expect("the error naming the closed connection and when");
    exit(&mut p);
}
