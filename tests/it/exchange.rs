//! Lock-step exchanges with a scripted client on a raw UDP socket: the
//! RFC 7252 behaviours no real peer shows on demand (duplicates, separate
//! responses, RST, retransmission, an Update arriving while a read waits).
//!
//! nsh listens on port 0 (`listen(0)` in the script); the client learns
//! the port from nsh's `listening on UDP port N` line. The client waits
//! for what nsh shows (a datagram, a line it prints), never for a fixed
//! time, except where time passing is what is tested (a retransmission
//! timer, a registration lifetime): there the assertion holds however
//! late the threads run.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsh::coap::{BlockValue, CoapOption, Code, ContentFormat, Message, OptionNumber, Type, udp};

use crate::harness::{listening_port, run_nsh, script};

/// How long the client waits for nsh (a datagram, a line), however loaded
/// the machine.
const PATIENCE: Duration = Duration::from_secs(10);

struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    /// nsh's output, line by line.
    lines: mpsc::Receiver<String>,
}

impl Client {
    fn new(port: u16, lines: mpsc::Receiver<String>) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            socket,
            server: ([127, 0, 0, 1], port).into(),
            lines,
        }
    }

    fn send(&self, m: &Message) {
        self.socket.send_to(&udp::encode(m), self.server).unwrap();
    }

    fn recv(&self) -> Message {
        let mut buf = [0u8; 1500];
        let (n, _) = self
            .socket
            .recv_from(&mut buf)
            .expect("a datagram from nsh");
        udp::decode(&buf[..n]).unwrap()
    }

    /// Asserts that nsh sends nothing for `quiet`.
    fn expect_silence(&self, quiet: Duration, why: &str) {
        self.socket.set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0u8; 1500];
        if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
            panic!("{why}: got {:?}", udp::decode(&buf[..n]));
        }
        self.socket.set_read_timeout(Some(PATIENCE)).unwrap();
    }

    /// Waits until nsh prints a line containing `text`; returns it.
    fn wait_line(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("nsh printed no line with {text:?} ({e})"),
            }
        }
    }

    fn register(&self, mid: u16) -> Message {
        self.register_for(mid, 60)
    }

    fn register_for(&self, mid: u16, lifetime: u32) -> Message {
        let mut m = Message::new(Type::Confirmable, Code::POST, mid);
        m.token = vec![0xaa, mid as u8];
        m.set_uri(&format!("/rd?ep=lockstep&lt={lifetime}"));
        m.add_option(CoapOption::uint(
            OptionNumber::CONTENT_FORMAT,
            u64::from(ContentFormat::LINK_FORMAT.0),
        ));
        m.payload = b"</3/0>".to_vec();
        m
    }
}

fn text_response(req: &Message, mtype: Type, mid: u16, text: &str) -> Message {
    let mut r = Message::new(mtype, Code::CONTENT, mid);
    r.token = req.token.clone();
    r.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
    r.payload = text.as_bytes().to_vec();
    r
}

/// Runs the lock-step script for `case`; `client_side` plays the client
/// once nsh is listening.
fn lockstep(case: &str, client_side: impl FnOnce(Client) + Send + 'static) {
    lockstep_with(case, &[], client_side);
}

fn lockstep_with(case: &str, extra: &[&str], client_side: impl FnOnce(Client) + Send + 'static) {
    let mut side = Some(client_side);
    let mut port = None;
    let (to_client, lines) = mpsc::channel();
    let mut lines = Some(lines);
    let mut handle = None;
    let script = script("lockstep.rhai");
    let mut argv = vec![script.as_str(), case];
    argv.extend_from_slice(extra);
    let run = run_nsh(&argv, Duration::from_secs(60), |line| {
        // The client may stop reading (it has ended or failed).
        let _ = to_client.send(line.to_string());
        if let Some(p) = listening_port(line) {
            port = Some(p);
        } else if line.contains("@@go")
            && let (Some(f), Some(lines)) = (side.take(), lines.take())
        {
            let port = port.expect("the script listens (`listen(0)`) before @@go");
            handle = Some(std::thread::spawn(move || f(Client::new(port, lines))));
        }
    });
    drop(to_client);
    let client = handle.map(|h| h.join());
    run.assert_ok();
    if let Some(result) = client {
        result.expect("the client side passed");
    }
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}

#[test]
fn a_duplicate_con_is_answered_with_the_same_response_and_not_processed_twice() {
    lockstep("duplicate", |c| {
        let reg = c.register(0x100);
        c.send(&reg);
        let first = c.recv();
        c.send(&reg);
        let second = c.recv();
        assert_eq!(first.code, Code::CREATED);
        assert_eq!(udp::encode(&first), udp::encode(&second));
    });
}

#[test]
fn a_separate_response_after_an_empty_ack_is_returned_and_acknowledged() {
    lockstep("separate", |c| {
        c.send(&c.register(0x200));
        c.recv();
        let req = c.recv();
        assert_eq!(req.code, Code::GET);
        c.send(&Message::new(
            Type::Acknowledgement,
            Code::EMPTY,
            req.message_id,
        ));
        // Time passing is the point here: the separate response comes after
        // the GET's first retransmission was due (ACK_TIMEOUT 0.3 s at most
        // 1.5 times, lockstep.rhai). Nothing may come meanwhile, however
        // late this thread runs: the empty ACK stopped retransmission.
        c.expect_silence(
            Duration::from_secs(1),
            "the GET is not retransmitted after its empty ACK",
        );
        c.send(&text_response(&req, Type::Confirmable, 0x2001, "separate"));
        let ack = c.recv();
        assert_eq!(
            (ack.mtype, ack.code, ack.message_id),
            (Type::Acknowledgement, Code::EMPTY, 0x2001)
        );
    });
}

#[test]
fn a_reset_ends_the_request_and_is_reported() {
    lockstep("reset", |c| {
        c.send(&c.register(0x300));
        c.recv();
        let req = c.recv();
        c.send(&Message::new(Type::Reset, Code::EMPTY, req.message_id));
    });
}

#[test]
fn an_unanswered_con_is_retransmitted_with_the_same_message_id() {
    lockstep("retransmit", |c| {
        c.send(&c.register(0x400));
        c.recv();
        let first = c.recv();
        let again = c.recv();
        assert_eq!(
            udp::encode(&first),
            udp::encode(&again),
            "a retransmission is the same datagram"
        );
        c.send(&text_response(
            &again,
            Type::Acknowledgement,
            again.message_id,
            "second try",
        ));
    });
}

#[test]
fn an_update_arriving_while_a_read_waits_is_not_taken_for_its_response() {
    lockstep("interleaved", |c| {
        c.send(&c.register(0x500));
        let created = c.recv();
        let location = created.location_string();
        let req = c.recv();
        let mut update = Message::new(Type::Confirmable, Code::POST, 0x501);
        update.token = vec![0x77];
        update.set_uri(&location);
        c.send(&update);
        let changed = c.recv();
        assert_eq!(
            (changed.code, changed.token.clone()),
            (Code::CHANGED, vec![0x77])
        );
        c.send(&text_response(
            &req,
            Type::Acknowledgement,
            req.message_id,
            "the answer",
        ));
    });
}

#[test]
fn a_block2_read_asks_for_every_block_and_returns_the_whole_body() {
    lockstep("block2", |c| {
        c.send(&c.register(0x600));
        c.recv();
        let req = c.recv();
        assert_eq!(req.block2(), None);
        let mut r = text_response(
            &req,
            Type::Acknowledgement,
            req.message_id,
            "0123456789abcdef",
        );
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(0, true, 16).unwrap().encode(),
        ));
        c.send(&r);
        let next = c.recv();
        assert_eq!(next.path_string(), "/3/0/0");
        assert_eq!(next.block2(), BlockValue::new(1, false, 16));
        let mut r = text_response(&next, Type::Acknowledgement, next.message_id, "the rest");
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(1, false, 16).unwrap().encode(),
        ));
        c.send(&r);
    });
}

/// RFC 7641 §3.6: the deregistration reuses the observation's token, and a
/// notification sent before the client saw it may arrive first; it carries
/// Observe, so it goes to the inbox and the cancel returns its own response.
#[test]
fn a_notification_in_flight_is_not_taken_for_the_cancels_response() {
    lockstep("cancel", |c| {
        c.send(&c.register(0x900));
        c.recv();
        let obs = c.recv();
        assert_eq!(obs.observe(), Some(0));
        let mut r = text_response(&obs, Type::Acknowledgement, obs.message_id, "first");
        r.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
        c.send(&r);
        let cancel = c.recv();
        assert_eq!(
            (cancel.observe(), &cancel.token),
            (Some(1), &obs.token),
            "the cancel reuses the token"
        );
        let mut n = text_response(&obs, Type::NonConfirmable, 0x901, "in flight");
        n.add_option(CoapOption::uint(OptionNumber::OBSERVE, 2));
        c.send(&n);
        // nsh has handled the notification (while the cancel waits) once
        // it shows it; only then does the cancel's response leave.
        let shown = c.wait_line("in flight");
        assert!(shown.starts_with("<- Notify"), "{shown}");
        c.send(&text_response(
            &cancel,
            Type::Acknowledgement,
            cancel.message_id,
            "the cancel's response",
        ));
    });
}

/// An error response instead of the second block is reported with its
/// code and the block asked for.
#[test]
fn an_error_in_the_middle_of_a_block2_read_is_reported_as_that_error() {
    lockstep("block2_error", |c| {
        c.send(&c.register(0xc00));
        c.recv();
        let req = c.recv();
        let mut r = text_response(
            &req,
            Type::Acknowledgement,
            req.message_id,
            "0123456789abcdef",
        );
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(0, true, 16).unwrap().encode(),
        ));
        c.send(&r);
        let next = c.recv();
        assert_eq!(next.block2(), BlockValue::new(1, false, 16));
        let mut e = Message::new(Type::Acknowledgement, Code::NOT_FOUND, next.message_id);
        e.token = next.token.clone();
        c.send(&e);
    });
}

/// The ETag of the second block differs from the first's: the read stops,
/// naming the block and what had arrived. No real peer changes a
/// resource mid-transfer on demand, hence the scripted one.
#[test]
fn a_changed_etag_in_a_block2_read_names_the_block() {
    lockstep("block2_etag", |c| {
        c.send(&c.register(0xc80));
        c.recv();
        let req = c.recv();
        let mut r = text_response(
            &req,
            Type::Acknowledgement,
            req.message_id,
            "0123456789abcdef",
        );
        r.add_option(CoapOption::new(OptionNumber::ETAG, vec![1]));
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(0, true, 16).unwrap().encode(),
        ));
        c.send(&r);
        let next = c.recv();
        let mut r = text_response(&next, Type::Acknowledgement, next.message_id, "changed");
        r.add_option(CoapOption::new(OptionNumber::ETAG, vec![2]));
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK2,
            BlockValue::new(1, false, 16).unwrap().encode(),
        ));
        c.send(&r);
    });
}

/// Answers the first Block1 block of a write_file with `code` (and
/// `size1`, for 4.13). libcoap's server accepts any size and never
/// answers these on demand, hence the scripted client.
fn block1_refused(case: &str, code: Code, size1: Option<u64>) {
    let file = std::env::temp_dir().join(format!("nsh-{case}-{}.bin", std::process::id()));
    std::fs::write(&file, vec![0x5a; 3000]).unwrap();
    let path = file.to_str().unwrap().to_string();
    lockstep_with(case, &[&path], move |c| {
        c.send(&c.register(0xd00));
        c.recv();
        let b0 = c.recv();
        assert_eq!(b0.block1(), BlockValue::new(0, true, 1024));
        let mut r = Message::new(Type::Acknowledgement, code, b0.message_id);
        r.token = b0.token.clone();
        if let Some(size1) = size1 {
            r.add_option(CoapOption::uint(OptionNumber::SIZE1, size1));
        }
        c.send(&r);
    });
    let _ = std::fs::remove_file(&file);
}

/// RFC 7959 §2.9.3: a 4.13 to a Block1 upload may say in Size1 how large a
/// body the peer accepts; the error names the code once, and that size.
#[test]
fn a_4_13_to_write_file_says_once_what_the_client_accepts() {
    block1_refused("block1_413", Code::REQUEST_ENTITY_TOO_LARGE, Some(512));
}

/// RFC 7959 §2.9.2: 4.08 Request Entity Incomplete, named once.
#[test]
fn a_4_08_to_write_file_is_named_once() {
    block1_refused("block1_408", Code::REQUEST_ENTITY_INCOMPLETE, None);
}

/// The manual's bootstrap command line (7.1.2.7.1), typed as shown, against
/// a scripted client that answers every request with 2.04.
#[test]
fn the_manuals_bootstrap_command_line_sends_two_writes_and_a_finish() {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = client.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1500];
        for _ in 0..3 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            let req = udp::decode(&buf[..n]).unwrap();
            let mut r = Message::new(Type::Acknowledgement, Code::CHANGED, req.message_id);
            r.token = req.token.clone();
            client.send_to(&udp::encode(&r), from).unwrap();
            seen.push(req);
        }
        seen
    });
    let line = "bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:9500 security_mode=PreSharedKey psk_identity=user psk_key=password";
    let code = format!("connect 127.0.0.1 {port}\n{line}\n");
    let mut child = std::process::Command::new(crate::harness::nsh_bin())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), code.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let seen = answer.join().unwrap();
    assert_eq!(seen[0].path_string(), "/0");
    assert_eq!(seen[0].payload.len(), 56);
    assert!(
        seen[0]
            .payload
            .windows(6)
            .any(|w| w == [0xc4, 0x03, b'u', b's', b'e', b'r'])
    );
    assert_eq!(seen[1].path_string(), "/1");
    assert_eq!(seen[1].payload.len(), 18);
    assert_eq!(
        (seen[2].code, seen[2].path_string()),
        (Code::POST, "/bs".to_string())
    );
    assert!(
        text.contains(
            "-> Write /0: APPLICATION_LWM2M_TLV, 56 bytes\n<- Changed (no location path)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "-> Write /1: APPLICATION_LWM2M_TLV, 18 bytes\n<- Changed (no location path)"
        ),
        "{text}"
    );
    assert!(
        text.contains("-> Bootstrap Finish /bs: \n<- Changed (no location path)"),
        "{text}"
    );
}

#[test]
fn write_file_follows_a_smaller_block_size_the_client_asks_for() {
    let file = std::env::temp_dir().join(format!("nsh-block1-{}.bin", std::process::id()));
    std::fs::write(&file, vec![0x5a; 1500]).unwrap();
    let path = file.to_str().unwrap().to_string();
    lockstep_with("block1", &[&path], |c| {
        c.send(&c.register(0x700));
        c.recv();
        // Block 0 of 1024 bytes, with Size1; answered "continue, but 256".
        let b0 = c.recv();
        assert_eq!(
            (b0.block1(), b0.payload.len()),
            (BlockValue::new(0, true, 1024), 1024)
        );
        assert_eq!(b0.uint_option(OptionNumber::SIZE1), Some(1500));
        let mut r = Message::new(Type::Acknowledgement, Code::CONTINUE, b0.message_id);
        r.token = b0.token.clone();
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK1,
            BlockValue::new(0, true, 256).unwrap().encode(),
        ));
        c.send(&r);
        // Then 1024..1280 as block 4 of 256, and the last 220 bytes as block 5.
        for (num, len, more) in [(4, 256, true), (5, 220, false)] {
            let b = c.recv();
            assert_eq!(
                (b.block1(), b.payload.len()),
                (BlockValue::new(num, more, 256), len)
            );
            let code = if more { Code::CONTINUE } else { Code::CHANGED };
            let mut r = Message::new(Type::Acknowledgement, code, b.message_id);
            r.token = b.token.clone();
            r.add_option(CoapOption::new(
                OptionNumber::BLOCK1,
                BlockValue::new(num, more, 256).unwrap().encode(),
            ));
            c.send(&r);
        }
    });
    let _ = std::fs::remove_file(&file);
}

/// RFC 7959 §2.3: a 2.31 Continue acknowledges the block sent by echoing
/// its number; one that echoes another block stops the upload with an
/// error naming both.
#[test]
fn write_file_stops_at_a_continue_that_echoes_another_block() {
    let file = std::env::temp_dir().join(format!("nsh-block1-echo-{}.bin", std::process::id()));
    std::fs::write(&file, vec![0x5a; 40]).unwrap();
    let path = file.to_str().unwrap().to_string();
    lockstep_with("block1_echo", &[&path], |c| {
        c.send(&c.register(0xa00));
        c.recv();
        let b0 = c.recv();
        assert_eq!(b0.block1(), BlockValue::new(0, true, 16));
        let mut r = Message::new(Type::Acknowledgement, Code::CONTINUE, b0.message_id);
        r.token = b0.token.clone();
        r.add_option(CoapOption::new(
            OptionNumber::BLOCK1,
            BlockValue::new(1, true, 16).unwrap().encode(),
        ));
        c.send(&r);
    });
    let _ = std::fs::remove_file(&file);
}

/// RFC 7959 §2.2: SZX 7 (2048) is reserved; `chunksize: 2048` is refused
/// before anything is sent.
#[test]
fn write_file_refuses_a_2048_byte_chunk_size() {
    let file = std::env::temp_dir().join(format!("nsh-block1-szx7-{}.bin", std::process::id()));
    std::fs::write(&file, vec![0x5a; 3000]).unwrap();
    let path = file.to_str().unwrap().to_string();
    lockstep_with("block1_szx7", &[&path], |c| {
        c.send(&c.register(0xb00));
        c.recv();
    });
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_registration_without_update_expires_after_its_lifetime() {
    lockstep("expiry", |c| {
        let sent = Instant::now();
        c.send(&c.register_for(0x800, 1));
        assert_eq!(c.recv().code, Code::CREATED);
        // Not before the lifetime has passed: the registration began after
        // `sent`, so this holds however late either side runs.
        c.wait_line("registration of lockstep");
        let after = sent.elapsed();
        assert!(
            after >= Duration::from_secs(1),
            "expired {after:?} after the Register, within its 1 s lifetime"
        );
    });
}

/// A thousand random datagrams, then a valid Register: every datagram is
/// recorded, the malformed ones with their error, and the server still
/// answers. nsh listens from its command line (`-l 0`) and names the port
/// before the script runs.
#[test]
fn random_datagrams_are_recorded_and_the_server_keeps_answering() {
    let mut port = None;
    let garbage = script("garbage.rhai");
    let run = run_nsh(&["-l", "0", &garbage], Duration::from_secs(60), |line| {
        if let Some(p) = listening_port(line) {
            port = Some(p);
        } else if line.contains("@@send") {
            send_garbage(port.expect("`nsh -l 0 SCRIPT` names its port before the script runs"));
        }
    });
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}

/// Sends the datagrams of the test above. Every 50, a CoAP ping from
/// another socket, answered once nsh has read everything sent before it:
/// the socket's receive buffer never holds more than 50 (no drop), however
/// slowly nsh runs.
fn send_garbage(port: u16) {
    let c = Client::new(port, mpsc::channel().1);
    let pacer = Client::new(port, mpsc::channel().1);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..1000u16 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 60) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|k| (seed >> (k % 8 * 8)) as u8 ^ (k as u8).wrapping_mul(31))
            .collect();
        c.socket.send_to(&bytes, c.server).unwrap();
        if i % 50 == 49 {
            let ping = Message::new(Type::Confirmable, Code::EMPTY, 0xf000 + i);
            pacer.send(&ping);
            let answer = pacer.recv();
            assert_eq!(
                (answer.mtype, answer.message_id),
                (Type::Reset, ping.message_id),
                "a ping is answered with RST"
            );
        }
    }
    let mut reg = c.register(0x900);
    reg.set_uri("/rd?ep=after-garbage&lt=60");
    c.send(&reg);
}

/// `bootstrap` in Certificate mode with PEM files (as `listen` takes them)
/// writes DER into the Security object (OMA LwM2M Core, object 0: resources
/// 3 Public Key or Identity, 4 Server Public Key, 5 Secret Key are opaque
/// DER), byte-identical to the DER the openssl command line makes of them.
/// No installable client bootstraps onto a certificate server (wakatiwai's
/// tinydtls has ECDSA compiled out; coap-node has no DTLS), so the bytes
/// are checked here.
#[test]
fn bootstrap_writes_pem_certificates_and_keys_as_der() {
    let certs = crate::harness::repo().join("tests/fixtures/certs");
    let der = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&certs)
            .output()
            .expect("openssl (bash tests/setup.sh)");
        assert!(out.status.success(), "{args:?}");
        out.stdout
    };
    let client_der = der(&["x509", "-in", "client.crt", "-outform", "DER"]);
    let ca_der = der(&["x509", "-in", "ca.crt", "-outform", "DER"]);
    let key_der = der(&["ec", "-in", "client.key", "-outform", "DER"]);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = client.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            let req = udp::decode(&buf[..n]).unwrap();
            let mut r = Message::new(Type::Acknowledgement, Code::CHANGED, req.message_id);
            r.token = req.token.clone();
            client.send_to(&udp::encode(&r), from).unwrap();
            seen.push(req);
        }
        seen
    });
    let dir = certs.display();
    let code = format!(
        "connect 127.0.0.1 {port}\nbootstrap uri=coaps://127.0.0.1:5684 security_mode=Certificate client_cert_path={dir}/client.crt client_private_key_path={dir}/client.key server_cert_path={dir}/ca.crt\n"
    );
    let mut child = std::process::Command::new(crate::harness::nsh_bin())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), code.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let seen = answer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(seen[0].path_string(), "/0", "{text}");
    let holds = |what: &str, bytes: &[u8]| {
        assert!(
            seen[0].payload.windows(bytes.len()).any(|w| w == bytes),
            "Write /0 lacks the {what} DER ({} bytes)\n{text}",
            bytes.len()
        );
    };
    holds("client certificate", &client_der);
    holds("CA certificate", &ca_der);
    holds("private key", &key_der);
    // Nothing of the PEM text went out.
    assert!(!seen[0].payload.windows(5).any(|w| w == b"-----"), "{text}");
}
