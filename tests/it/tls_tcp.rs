//! CoAP over TLS over TCP (RFC 8323 §9, `coaps+tcp`): `nsh -l 0 --tcp`
//! with a PSK, and `listen 0 tcp=1` with certificates, against libcoap's
//! `coap-client-openssl`. A Register gets Created with the identity on the
//! message, CSMs go both ways, and a client with a wrong key or an
//! untrusted certificate fails its handshake with one line while the shell
//! goes on serving the next client. A plain `coap+tcp://` client, a bare
//! connect-and-close and an unknown PSK identity are each told in plain
//! words.

use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::harness::{LiveNsh, listening_port, repo, run_nsh, script};

/// Runs `coap-client-openssl` with `credentials`, posting a Register for
/// `ep` to nsh on `port`; returns its output (verbose).
fn coap_client(credentials: &[String], port: u16, ep: &str) -> String {
    let uri = format!("coaps+tcp://127.0.0.1:{port}/rd?ep={ep}&lt=60");
    let o = Command::new("coap-client-openssl")
        .args(credentials)
        .args(["-B", "20", "-v", "6", "-m", "post", "-e", "</3/0>", &uri])
        .output()
        .expect("coap-client-openssl is missing: run `bash tests/setup.sh`");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn cert(name: &str) -> String {
    repo()
        .join("tests/fixtures/certs")
        .join(name)
        .display()
        .to_string()
}

/// Runs the `tls_tcp.rhai` script with nsh `flags` and `args`: a good
/// client registers `ep`; at `@@wrong` a bad one fails, then a good one
/// registers `ep-2`, and once it has its answer a last one registers
/// `ep-done`, which ends the script. Returns nsh's output and the outputs
/// of the clients that registered `ep` and `ep-2`.
fn session(
    flags: &[&str],
    args: &[&str],
    good: Vec<String>,
    bad: Vec<String>,
) -> (String, Vec<String>) {
    let mut port = 0;
    let outputs = Arc::new(Mutex::new(Vec::new()));
    let (wrong_tx, wrong_rx) = mpsc::channel::<()>();
    let mut wrong_rx = Some(wrong_rx);
    let script = script("tls_tcp.rhai");
    let mut argv = flags.to_vec();
    argv.push(&script);
    argv.extend_from_slice(args);
    let ep = args[0].to_string();
    let run = run_nsh(&argv, Duration::from_secs(90), |line| {
        if let Some(p) = listening_port(line) {
            port = p;
        } else if line.contains("@@register")
            && let Some(wrong) = wrong_rx.take()
        {
            let (good, bad, out, ep) = (good.clone(), bad.clone(), outputs.clone(), ep.clone());
            // One client after the other, each to its end.
            std::thread::spawn(move || {
                let o = coap_client(&good, port, &ep);
                out.lock().unwrap().push(o);
                if wrong.recv_timeout(Duration::from_secs(60)).is_err() {
                    return;
                }
                coap_client(&bad, port, "bad");
                let o = coap_client(&good, port, &format!("{ep}-2"));
                out.lock().unwrap().push(o);
                coap_client(&good, port, &format!("{ep}-done"));
            });
        } else if line.contains("@@wrong") {
            let _ = wrong_tx.send(());
        }
    });
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    let outputs = outputs.lock().unwrap().clone();
    (run.stdout, outputs)
}

/// Checks what nsh printed: three sessions established with
/// `identity`, one handshake failure naming the peer and `cause`, and
/// nothing else about that peer.
fn check_lines(out: &str, identity: &str, cause: &str) {
    let established: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("TLS session with 127.0.0.1:"))
        .collect();
    assert_eq!(established.len(), 3, "{out}");
    for l in &established {
        assert!(l.contains(&format!("identity `{identity}`)")), "{l}");
    }
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("handshake") || l.contains("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{out}");
    assert!(
        failed[0].starts_with("TLS handshake with 127.0.0.1:"),
        "{}",
        failed[0]
    );
    assert!(failed[0].contains(cause), "{}", failed[0]);
    let bad_peer = failed[0]
        .split_whitespace()
        .nth(3)
        .expect("the peer on the failure line");
    assert_eq!(
        out.lines().filter(|l| l.contains(bad_peer)).count(),
        1,
        "only the failure line names {bad_peer}:\n{out}"
    );
    assert!(!out.contains("<- Register /rd?ep=bad"), "{out}");
    // CSMs both ways, and the registrations answered.
    assert!(
        out.contains("<- 7.01 (SIGNALING_CSM), None, id=None, token=b''"),
        "{out}"
    );
    assert!(
        out.contains("-> 7.01 (SIGNALING_CSM), None, id=None, token=b''"),
        "{out}"
    );
    assert!(out.contains("-> Created /rd/1"), "{out}");
    assert!(out.contains("-> Created /rd/2"), "{out}");
}

fn check_clients(outputs: &[String]) {
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    for o in outputs {
        let created = o
            .lines()
            .find(|l| l.contains("c:2.01"))
            .unwrap_or_else(|| panic!("no 2.01 in coap-client's output:\n{o}"));
        assert!(created.contains("Location-Path:rd"), "{o}");
    }
}

#[test]
fn a_psk_client_registers_over_coaps_tcp_and_a_wrong_key_fails_alone() {
    let (out, clients) = session(
        &[
            "-l",
            "0",
            "--tcp",
            "--psk-identity",
            "user",
            "--psk-key",
            "password",
        ],
        &["tls-dev", "user"],
        ["-u", "user", "-k", "password"].map(String::from).to_vec(),
        ["-u", "user", "-k", "wrong"].map(String::from).to_vec(),
    );
    assert!(
        out.contains("listening on TLS over TCP (PSK identity `user`) port "),
        "{out}"
    );
    check_lines(&out, "user", "wrong PSK key?");
    check_clients(&clients);
}

#[test]
fn a_certificate_client_registers_over_coaps_tcp_and_a_stranger_fails_alone() {
    let client = |name: &str| {
        vec![
            "-c".into(),
            cert(&format!("{name}.crt")),
            "-j".into(),
            cert(&format!("{name}.key")),
            "-C".into(),
            cert("ca.crt"),
        ]
    };
    let (out, clients) = session(
        &[],
        &["cert-dev", "CN=urn:nsh:client-1", "listen"],
        client("client"),
        client("stranger"),
    );
    assert!(
        out.contains("listening on TLS over TCP (certificate "),
        "{out}"
    );
    check_lines(
        &out,
        "CN=urn:nsh:client-1",
        "the certificate was rejected: issued by an unknown CA",
    );
    check_clients(&clients);
}

/// The script of the failure tests: a good client registers `tcp-after`
/// once the failures were seen, which ends it.
const AFTER: &str = r#"
print("@@go");
wait_for(#{kind: "Register", endpoint: "tcp-after"}, 60);
print("@@done");
"#;

/// `nsh -l 0 --tcp -i myid -k secretPSK` running [`AFTER`], ready.
fn psk_tcp_server() -> LiveNsh {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--tcp",
        "-i",
        "myid",
        "-k",
        "secretPSK",
        "-c",
        AFTER,
    ]);
    nsh.wait("@@go", 10);
    nsh
}

/// Registers `tcp-after` with the right PSK (the shell may end before its
/// answer is out) and checks the shell ends well; returns its output.
fn register_after_and_finish(mut nsh: LiveNsh) -> String {
    coap_client(
        &["-u", "myid", "-k", "secretPSK"].map(String::from),
        nsh.port,
        "tcp-after",
    );
    nsh.wait("@@done", 30);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}");
    out
}

/// A plain CoAP-over-TCP client (libcoap's `coap-client-notls`) at a TLS
/// port is told as such, and a connection closed before sending anything
/// is told in plain words; one line each.
#[test]
fn plain_coap_and_a_bare_connect_at_a_tls_port_are_told_in_words() {
    let mut nsh = psk_tcp_server();
    let uri = format!("coap+tcp://127.0.0.1:{}/rd?ep=plain&lt=60", nsh.port);
    Command::new("coap-client-notls")
        .args(["-B", "3", "-m", "post", "-e", "</3/0>", &uri])
        .output()
        .expect("coap-client-notls is missing: run `bash tests/setup.sh`");
    let plain = nsh.wait("TLS handshake with", 10);
    assert!(
        plain.starts_with("TLS handshake with 127.0.0.1:")
            && plain.contains(" failed: not a TLS ClientHello (plain CoAP over TCP?) ("),
        "{plain}"
    );
    let bare = std::net::TcpStream::connect(("127.0.0.1", nsh.port)).unwrap();
    let bare_peer = bare.local_addr().unwrap();
    drop(bare);
    let closed = nsh.wait("TLS handshake with", 10);
    assert!(
        closed.starts_with(&format!("TLS handshake with {bare_peer} failed: "))
            && closed.contains("the client closed the connection before the handshake"),
        "{closed}"
    );
    let out = register_after_and_finish(nsh);
    assert_eq!(out.matches("TLS handshake with").count(), 2, "{out}");
    assert!(!out.contains("mbed TLS error"), "{out}");
}

/// An unknown PSK identity over TLS over TCP is named on the failure line.
#[test]
fn an_unknown_psk_identity_over_tcp_is_named() {
    let mut nsh = psk_tcp_server();
    coap_client(
        &["-u", "otherid", "-k", "secretPSK"].map(String::from),
        nsh.port,
        "other",
    );
    let line = nsh.wait("TLS handshake with", 10);
    assert!(
        line.starts_with("TLS handshake with 127.0.0.1:")
            && line.contains(" failed: unknown PSK identity `otherid` ("),
        "{line}"
    );
    let out = register_after_and_finish(nsh);
    assert_eq!(out.matches("TLS handshake with").count(), 1, "{out}");
}

/// `nsh -l 0 --tcp` with server.crt and client certificates required
/// (ca.crt), running [`AFTER`], ready.
fn cert_tcp_server() -> LiveNsh {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--tcp",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        AFTER,
    ]);
    nsh.wait("@@go", 10);
    nsh
}

/// Registers `tcp-after` with client.crt and checks the shell ends well;
/// returns its output.
fn register_with_cert_and_finish(mut nsh: LiveNsh) -> String {
    let good = coap_client(
        &[
            "-c".into(),
            cert("client.crt"),
            "-j".into(),
            cert("client.key"),
            "-C".into(),
            cert("ca.crt"),
        ],
        nsh.port,
        "tcp-after",
    );
    nsh.wait("@@done", 30);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}\nclient: {good}");
    out
}

/// `openssl s_client -tls1_2` (over TCP) to nsh on `port` with `args`,
/// stdin empty; its output.
fn s_client_tcp(port: u16, args: &[String]) -> String {
    let o = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .arg("-brief")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is missing: run `bash tests/setup.sh`");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A client that does not trust the CA of nsh's certificate (openssl
/// s_client given other-ca.crt) ends the handshake with fatal alert
/// unknown_ca: nsh's one line names it, with its number and usual cause.
#[test]
fn a_client_that_does_not_trust_nsh_over_tcp_is_named_by_its_alert() {
    let mut nsh = cert_tcp_server();
    let said = s_client_tcp(
        nsh.port,
        &[
            "-CAfile".into(),
            cert("other-ca.crt"),
            "-verify_return_error".into(),
            "-cert".into(),
            cert("client.crt"),
            "-key".into(),
            cert("client.key"),
        ],
    );
    let line = nsh.wait("TLS handshake with", 10);
    assert!(
        line.starts_with("TLS handshake with 127.0.0.1:")
            && line.ends_with(
                " failed: the client sent fatal alert unknown_ca (48): it does not trust \
                 the CA of nsh's certificate (mbed TLS: SslFatalAlertMessage)"
            ),
        "{line}\nclient: {said}"
    );
    let out = register_with_cert_and_finish(nsh);
    assert_eq!(out.matches("TLS handshake with").count(), 1, "{out}");
}

/// A client without the certificate nsh requires gets a fatal
/// handshake_failure alert over TCP as over DTLS (RFC 5246 §7.4.6), not a
/// reset connection, and nsh prints one line: openssl s_client and
/// libcoap's gnutls client each name the alert they got.
#[test]
fn a_client_without_a_certificate_over_tcp_gets_an_alert_and_one_line() {
    let mut nsh = cert_tcp_server();
    let said = s_client_tcp(nsh.port, &["-CAfile".into(), cert("ca.crt")]);
    let line = nsh.wait("TLS handshake with", 10);
    assert!(
        line.starts_with("TLS handshake with 127.0.0.1:")
            && line.contains(" failed: the client sent no certificate ("),
        "{line}"
    );
    assert!(said.contains("SSL alert number 40"), "{said}");
    assert!(!said.contains("errno=104"), "{said}");
    let uri = format!("coaps+tcp://127.0.0.1:{}/rd?ep=none&lt=60", nsh.port);
    let o = Command::new("coap-client-gnutls")
        .args(["-B", "5", "-m", "post", "-C", &cert("ca.crt"), &uri])
        .output()
        .expect("coap-client-gnutls is missing: run `bash tests/setup.sh`");
    let gnutls = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    nsh.wait("TLS handshake with", 10);
    assert!(gnutls.contains("Alert '40'"), "{gnutls}");
    let out = register_with_cert_and_finish(nsh);
    assert_eq!(out.matches("TLS handshake with").count(), 2, "{out}");
    assert!(!out.contains("<- Register /rd?ep=none"), "{out}");
}

/// A client that asks to renegotiate (`openssl s_client`'s `R` command)
/// is refused (no_renegotiation) and ends the connection with an
/// encrypted fatal alert: nsh's line says that in words, and names the
/// alert, which it decrypts.
#[test]
fn a_client_that_asks_to_renegotiate_over_tcp_is_told_as_such() {
    use std::io::Write;
    let mut nsh = psk_tcp_server();
    let mut client = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-connect"])
        .arg(format!("127.0.0.1:{}", nsh.port))
        .args([
            "-psk_identity",
            "myid",
            "-psk",
            "73656372657450534b",
            "-cipher",
            "PSK-AES128-CCM8",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is missing: run `bash tests/setup.sh`");
    nsh.wait("TLS session with", 10);
    let mut input = client.stdin.take().expect("piped stdin");
    input.write_all(b"R\n").expect("s_client reads its input");
    let closed = nsh.wait("TLS connection with", 10);
    drop(input);
    let _ = client.wait();
    // OpenSSL's client sends handshake_failure, or now and then
    // unexpected_message, as the refusal meets its state.
    let named = |alert: &str| {
        closed.ends_with(&format!(
            " closed: the client asked to renegotiate, which nsh does not do, and sent \
             fatal alert {alert} (mbed TLS: SslFatalAlertMessage)"
        ))
    };
    assert!(
        closed.starts_with("TLS connection with 127.0.0.1:")
            && (named("handshake_failure (40)") || named("unexpected_message (10)")),
        "{closed}"
    );
    register_after_and_finish(nsh);
}
