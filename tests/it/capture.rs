//! `--pcap FILE`: a known exchange (Register, then a Read of /3/0 with the
//! token ca fe 42 answered 2.05) captured as pcapng and read back with
//! Debian's `tshark` (installed by tests/setup.sh), which must find the
//! CoAP code, Uri-Path and token of each message — over UDP, and over TCP
//! as a reassembled stream.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use nsh::coap::tcp::{Frame, decode_frame};
use nsh::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, Type, tcp, udp};

use crate::harness::{listening_port, run_nsh, script};

const PATIENCE: Duration = Duration::from_secs(10);

/// The Register both clients send.
fn register(reliable: bool) -> Message {
    let mut m = Message::new(Type::Confirmable, Code::POST, 0x5100);
    m.reliable = reliable;
    m.token = b"rg".to_vec();
    m.set_uri("/rd?ep=capture&lt=60");
    m.add_option(CoapOption::uint(
        OptionNumber::CONTENT_FORMAT,
        u64::from(ContentFormat::LINK_FORMAT.0),
    ));
    m.payload = b"</3/0>".to_vec();
    m
}

/// The 2.05 answering `req`.
fn content(req: &Message) -> Message {
    let mut r = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
    r.reliable = req.reliable;
    r.token = req.token.clone();
    r.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 0));
    r.payload = b"captured".to_vec();
    r
}

fn udp_client(port: u16) -> Result<(), String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    let server = ("127.0.0.1", port);
    let mut buf = [0u8; 1500];
    let mut recv = || -> Result<Message, String> {
        let (n, _) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
        udp::decode(&buf[..n]).map_err(|e| e.to_string())
    };
    let send = |m: &Message| s.send_to(&udp::encode(m), server).map(drop);
    send(&register(false)).map_err(|e| e.to_string())?;
    let created = recv()?;
    if created.code != Code::CREATED {
        return Err(format!("expected 2.01, got {created:?}"));
    }
    let read = recv()?;
    send(&content(&read)).map_err(|e| e.to_string())
}

fn tcp_client(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    let mut csm = Message::new(Type::Confirmable, Code::CSM, 0);
    csm.reliable = true;
    s.write_all(&tcp::encode(&csm)).map_err(|e| e.to_string())?;
    s.write_all(&tcp::encode(&register(true)))
        .map_err(|e| e.to_string())?;
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Frame::Complete(len, m) = decode_frame(&pending) {
            pending.drain(..len);
            let m = (*m).map_err(|e| e.to_string())?;
            if m.code == Code::GET {
                s.write_all(&tcp::encode(&content(&m)))
                    .map_err(|e| e.to_string())?;
                // Held open until nsh ends.
                let _ = s.read(&mut chunk);
                return Ok(());
            }
            continue;
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the Read".into());
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// Runs capture.rhai with `--pcap FILE` (and `extra` flags) against
/// `client`; returns tshark's fields, one packet per line. nsh listens on
/// a free port, not 5683, so tshark is told that `proto` (udp or tcp) on
/// that port is CoAP.
fn captured(
    name: &str,
    extra: &[&str],
    client: fn(u16) -> Result<(), String>,
    proto: &str,
) -> String {
    let dir = std::env::temp_dir().join(format!("nsh-capture-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.pcapng");
    let file_arg = file.display().to_string();
    let script = script("capture.rhai");
    let mut argv = vec!["--pcap", &file_arg];
    argv.extend_from_slice(extra);
    argv.push(&script);
    let (tx, rx) = mpsc::channel();
    let mut port = None;
    let run = run_nsh(&argv, Duration::from_secs(60), |line| {
        if let Some(p) = listening_port(line) {
            port = Some(p);
        } else if line.contains("@@go") {
            let port = port.expect("nsh listens before @@go");
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(client(port));
            });
        }
    });
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    rx.recv_timeout(PATIENCE)
        .expect("the client finished")
        .expect("the client side passed");
    let decode_as = format!("{proto}.port=={},coap", port.unwrap_or(0));
    tshark(&file, &["-d", &decode_as])
}

fn tshark(file: &Path, decode_as: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(decode_as)
        .args(["-Y", "coap", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "coap.code",
            "-e",
            "coap.opt.uri_path",
            "-e",
            "coap.token",
        ])
        .output()
        .expect("tshark (Debian package tshark; bash tests/setup.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tshark's lines: `code|uri-path segments|token hex`. Codes are numbers
/// (1 GET, 2 POST, 65 2.01, 69 2.05).
fn assert_known_exchange(fields: &str) {
    let lines: Vec<&str> = fields.lines().collect();
    assert!(lines.contains(&"2|rd|7267"), "the Register:\n{fields}");
    assert!(lines.contains(&"65||7267"), "the Created:\n{fields}");
    assert!(lines.contains(&"1|3,0|cafe42"), "the GET /3/0:\n{fields}");
    assert!(lines.contains(&"69||cafe42"), "the 2.05:\n{fields}");
}

#[test]
fn a_udp_exchange_is_captured_for_tshark() {
    let fields = captured("udp", &[], udp_client, "udp");
    assert_known_exchange(&fields);
}

#[test]
fn a_tcp_exchange_is_captured_as_a_stream() {
    let fields = captured("tcp", &["--tcp"], tcp_client, "tcp");
    assert_known_exchange(&fields);
}

/// nsh over DTLS (PSK user/password) for one Register of libcoap's
/// `coap-client-openssl`.
const DTLS_SCRIPT: &str = r#"
listen(0);
print("@@register");
let r = wait_for("Register", 20);
assert_eq(r.endpoint, "dtls-capture");
// The Created is recorded once it was handed to the socket.
for i in 0..100 {
    if history(4).filter(|m| m.kind == "Created" && m.direction == "sent").len() > 0 {
        break;
    }
    sleep(0.05);
}
print("@@done");
"#;

#[test]
fn a_dtls_exchange_is_captured_decrypted_on_its_own_interface() {
    let dir = std::env::temp_dir().join(format!("nsh-capture-{}-dtls", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("dtls.rhai");
    std::fs::write(&script, DTLS_SCRIPT).unwrap();
    let file = dir.join("run.pcapng");
    let (file_arg, script_arg) = (file.display().to_string(), script.display().to_string());
    let mut port = 0;
    let mut client = None;
    let run = run_nsh(
        &[
            "--pcap",
            &file_arg,
            "--psk-identity",
            "user",
            "--psk-key",
            "password",
            &script_arg,
        ],
        Duration::from_secs(60),
        |line| {
            if let Some(p) = listening_port(line) {
                port = p;
            } else if line.contains("@@register") {
                let uri = format!("coaps://127.0.0.1:{port}/rd?ep=dtls-capture&lt=300&b=U");
                client = Some(std::thread::spawn(move || {
                    Command::new("coap-client-openssl")
                        .args([
                            "-U", "-u", "user", "-k", "password", "-m", "post", "-t", "40", "-e",
                            "</3/0>", "-B", "5", &uri,
                        ])
                        .output()
                        .expect("coap-client-openssl (Debian libcoap3-bin; tests/setup.sh)")
                }));
            }
        },
    );
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    if let Some(c) = client {
        let _ = c.join();
    }
    let decode_as = format!("udp.port=={port},coap");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-d",
            &decode_as,
            "-Y",
            "coap",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "frame.interface_name",
            "-e",
            "coap.code",
            "-e",
            "coap.opt.uri_path",
        ])
        .output()
        .expect("tshark (Debian package tshark; bash tests/setup.sh installs it)");
    let fields = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = fields.lines().collect();
    assert!(
        lines.contains(&"nsh-decrypted|2|rd"),
        "the decrypted Register:\n{fields}"
    );
    assert!(
        lines.contains(&"nsh-decrypted|65|"),
        "the decrypted Created:\n{fields}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("nsh-decrypted|")),
        "only decrypted CoAP:\n{fields}"
    );
}

#[test]
fn ipv6_datagrams_carry_checksums_tshark_accepts() {
    // A peer on ::1 that never answers; nsh's GET to it is captured.
    let silent = UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let port = silent.local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("nsh-capture-{}-v6", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.pcapng");
    let file_arg = file.display().to_string();
    let code = format!(
        "listen(0); connect(\"::1\", {port}); try {{ coap_get(\"/x\", #{{timeout_s: 0.2}}); }} catch (e) {{}}"
    );
    let run = run_nsh(
        &["-6", "--pcap", &file_arg, "-c", &code],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    let decode_as = format!("udp.port=={port},coap");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args(["-d", &decode_as, "-o", "udp.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "ipv6.dst",
            "-e",
            "udp.dstport",
            "-e",
            "udp.checksum.status",
        ])
        .args(["-e", "coap.code", "-e", "coap.opt.uri_path"])
        .output()
        .expect("tshark (Debian package tshark; bash tests/setup.sh installs it)");
    let fields = String::from_utf8_lossy(&out.stdout);
    // Checksum status 1: good.
    let first = fields.lines().next().unwrap_or_default();
    assert_eq!(first, format!("::1|{port}|1|1|x"), "{fields}");
}

/// nsh keeps running after a Register of libcoap's `coap-client-notls`
/// was answered, while the test reads the capture.
const LIVE_SCRIPT: &str = r#"
capture(ARGS[0]);
listen(0);
print("@@register");
let r = wait_for("Register", 20);
assert_eq(r.endpoint, "live-capture");
for i in 0..100 {
    if history(4).filter(|m| m.kind == "Created" && m.direction == "sent").len() > 0 {
        break;
    }
    sleep(0.05);
}
print("@@look");
// The test registers a second client once it has read the file.
wait_for(#{kind: "Register", endpoint: "after-look"}, 30);
print("@@done");
"#;

/// A capture can be read while nsh runs (Wireshark or tshark on the file
/// of a session still going): every datagram recorded so far is in it.
#[test]
fn a_running_capture_can_be_read_with_every_datagram_so_far() {
    let dir = std::env::temp_dir().join(format!("nsh-capture-{}-live", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("live.rhai");
    std::fs::write(&script, LIVE_SCRIPT).unwrap();
    let file = dir.join("run.pcapng");
    let (file_arg, script_arg) = (file.display().to_string(), script.display().to_string());
    let mut port = 0;
    let mut seen = None;
    let run = run_nsh(&[&script_arg, &file_arg], Duration::from_secs(60), |line| {
        if let Some(p) = listening_port(line) {
            port = p;
        } else if line.contains("@@register") {
            register_with_libcoap(port, "live-capture");
        } else if line.contains("@@look") {
            // nsh is still running: it waits for the next Register.
            let decode_as = format!("udp.port=={port},coap");
            seen = Some(tshark(&file, &["-d", &decode_as]));
            register_with_libcoap(port, "after-look");
        }
    });
    run.assert_ok();
    let fields = seen.expect("the script reached @@look");
    let lines: Vec<&str> = fields.lines().collect();
    assert_eq!(lines.len(), 2, "the Register and its Created:\n{fields}");
    assert!(lines[0].starts_with("2|rd|"), "the Register:\n{fields}");
    assert!(lines[1].starts_with("65||"), "the Created:\n{fields}");
}

/// libcoap's `coap-client-notls` registers as `endpoint` with nsh on
/// `port` (in the background).
fn register_with_libcoap(port: u16, endpoint: &str) {
    let uri = format!("coap://127.0.0.1:{port}/rd?ep={endpoint}&lt=300&b=U");
    std::thread::spawn(move || {
        Command::new("coap-client-notls")
            .args([
                "-U", "-m", "post", "-t", "40", "-e", "</3/0>", "-B", "5", &uri,
            ])
            .output()
            .expect("coap-client-notls (Debian libcoap3-bin; tests/setup.sh)")
    });
}
