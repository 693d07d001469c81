//! DTLS security options against real peers: certificates with and without
//! a CA (libcoap's `coap-client-openssl` and `coap-client-gnutls`, `openssl
//! s_client`), a client without the required certificate getting an alert,
//! PEM and DER, errors at start, a PSK table, `--ciphersuites`,
//! `--debug`, a secure file server and `--dtls-idle-timeout`. nsh listens on
//! port 0 and the test reads the port from its first line.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{LiveNsh, nsh_bin, repo};

const C: &str = "tests/fixtures/certs";

fn cert(name: &str) -> String {
    repo().join(C).join(name).display().to_string()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `coap-client-{flavour} ARGS…` (Debian libcoap3-bin), its output.
fn coap_client(flavour: &str, args: &[&str]) -> String {
    let o = Command::new(format!("coap-client-{flavour}"))
        .args(["-B", "5"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("coap-client-{flavour}: {e} (run `bash tests/setup.sh`, Debian libcoap3-bin)")
        });
    text(&o)
}

/// A Register over coaps:// with a client certificate.
fn register_with_cert(flavour: &str, port: u16, crt: &str, ep: &str) -> String {
    let (c, k) = (cert(&format!("{crt}.crt")), cert(&format!("{crt}.key")));
    let ca = cert("ca.crt");
    let uri = format!("coaps://127.0.0.1:{port}/rd?ep={ep}&lt=60");
    coap_client(
        flavour,
        &[
            "-m", "post", "-c", &c, "-j", &k, "-C", &ca, "-e", "</3/0>", &uri,
        ],
    )
}

/// A Register over coaps:// with a PSK (`key` as literal text).
fn register_with_psk(port: u16, identity: &str, key: &str, ep: &str) -> String {
    let uri = format!("coaps://127.0.0.1:{port}/rd?ep={ep}&lt=60");
    coap_client(
        "openssl",
        &[
            "-m", "post", "-u", identity, "-k", key, "-e", "</3/0>", &uri,
        ],
    )
}

/// `openssl s_client -dtls1_2 -connect 127.0.0.1:PORT ARGS… -brief`, stdin
/// empty (it closes at once after the handshake).
fn s_client(port: u16, args: &[&str]) -> String {
    let o = Command::new("openssl")
        .args(["s_client", "-dtls1_2", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .arg("-brief")
        .stdin(Stdio::null())
        .output()
        .expect("openssl is missing: run `bash tests/setup.sh`");
    text(&o)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The script for the certificate tests: each Register by endpoint, in the
/// order the test runs the clients.
const CA_SCRIPT: &str = r#"
print("@@go-openssl");
let r = wait_for(#{kind: "Register", endpoint: "cert-openssl"}, 20);
assert_eq(r.identity, "CN=urn:nsh:client-1");
let cs = clients();
assert_eq(cs.len(), 1);
assert_eq(cs[0].endpoint, "cert-openssl");
assert_eq(cs[0].identity, "CN=urn:nsh:client-1");
print("@@go-gnutls");
let r = wait_for(#{kind: "Register", endpoint: "cert-gnutls"}, 20);
assert_eq(r.identity, "CN=urn:nsh:client-1");
assert_eq(clients().filter(|c| c.identity == "CN=urn:nsh:client-1").len(), 2);
print("@@done");
"#;

/// With a CA, coap-client-openssl and coap-client-gnutls register with
/// client.crt: the Register's identity and clients() give its subject, and
/// the session is ECDSA with CCM_8 (nsh's first choice).
#[test]
fn ca_verified_client_certificates_register_with_their_subject() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        CA_SCRIPT,
    ]);
    let port = nsh.port;
    nsh.wait("@@go-openssl", 10);
    let openssl = register_with_cert("openssl", port, "client", "cert-openssl");
    let est1 = nsh.established();
    nsh.wait("@@go-gnutls", 10);
    let gnutls = register_with_cert("gnutls", port, "client", "cert-gnutls");
    let est2 = nsh.established();
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}");
    for (who, client, line) in [("openssl", &openssl, &est1), ("gnutls", &gnutls, &est2)] {
        assert!(!client.contains("cannot send"), "{who}: {client}");
        assert!(
            line.starts_with("DTLS session with 127.0.0.1:")
                && line.ends_with(
                    " established (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, identity `CN=urn:nsh:client-1`)"
                ),
            "{who}: {line}\n{out}"
        );
    }
    assert!(
        out.contains("<- Register /rd?ep=cert-openssl&lt=60: </3/0>"),
        "{out}"
    );
    assert!(
        out.contains("<- Register /rd?ep=cert-gnutls&lt=60: </3/0>"),
        "{out}"
    );
    assert_eq!(out.matches("-> Created /rd/").count(), 2, "{out}");
}

/// A script that registers whatever comes until `cert-after`.
const AFTER_SCRIPT: &str = r#"
print("@@go");
let r = wait_for(#{kind: "Register", endpoint: "cert-after"}, 30);
assert_eq(r.identity, "CN=urn:nsh:client-1");
assert_eq(clients().len(), 1);
print("@@done");
"#;

/// Runs a rejected client certificate (`bad`, coap-client-openssl) against
/// nsh with a CA, checks nsh's one line about it ends with `why (…)`, then
/// registers a good one.
fn rejected_then_good(bad: &str, why: &str) {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        AFTER_SCRIPT,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    let client = register_with_cert("openssl", port, bad, "cert-bad");
    let failed = nsh.wait_line(|l| l.contains("DTLS"), 10);
    assert!(
        failed.starts_with("DTLS handshake with 127.0.0.1:")
            && failed.contains(&format!(" failed: the certificate was rejected: {why} (")),
        "{failed}\n{}",
        nsh.seen()
    );
    let good = register_with_cert("openssl", port, "client", "cert-after");
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}");
    assert!(client.contains("cannot send CoAP pdu"), "{client}");
    assert!(!good.contains("cannot send"), "{good}");
    assert!(!out.contains("cert-bad"), "{out}");
    assert_eq!(out.matches("DTLS handshake with").count(), 1, "{out}");
}

/// stranger.crt (signed by another CA) is rejected with one line naming the
/// peer and "unknown CA"; a good client registers afterwards.
#[test]
fn a_client_certificate_from_another_ca_is_rejected_as_unknown_ca() {
    rejected_then_good("stranger", "issued by an unknown CA");
}

/// expired.crt (signed by the CA, expired in 2020) is rejected as expired;
/// a good client registers afterwards.
#[test]
fn an_expired_client_certificate_is_rejected() {
    rejected_then_good("expired", "certificate expired");
}

/// With a CA, a client that sends no certificate (`flavour`: libcoap's
/// openssl or gnutls client, given only the CA) gets a fatal alert, so it
/// gives up at once instead of retransmitting its flight; nsh prints one
/// line for it and drops the records of that flight that still arrive
/// without a line each; a good client registers afterwards.
fn no_client_certificate_then_good(flavour: &str) {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        AFTER_SCRIPT,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    let ca = cert("ca.crt");
    let uri = format!("coaps://127.0.0.1:{port}/rd?ep=cert-none&lt=60");
    let client = coap_client(flavour, &["-m", "post", "-C", &ca, "-e", "</3/0>", &uri]);
    let failed = nsh.wait_line(|l| l.contains("DTLS"), 10);
    assert!(
        failed.starts_with("DTLS handshake with 127.0.0.1:")
            && failed.contains(" failed: the client sent no certificate ("),
        "{failed}\n{}",
        nsh.seen()
    );
    let good = register_with_cert(flavour, port, "client", "cert-after");
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}");
    // The alert reached the client, which names it (one left without an
    // alert retransmits until -B ends it, and says nothing of the kind).
    assert!(
        client.to_lowercase().contains("alert"),
        "{flavour}: {client}"
    );
    assert!(!good.contains("cannot send"), "{good}");
    assert!(!out.contains("cert-none"), "{out}");
    assert_eq!(out.matches("DTLS handshake with").count(), 1, "{out}");
    assert!(!out.contains("more failed handshakes"), "{out}");
}

#[test]
fn a_client_without_a_certificate_gets_an_alert_and_one_line_gnutls() {
    no_client_certificate_then_good("gnutls");
}

#[test]
fn a_client_without_a_certificate_gets_an_alert_and_one_line_openssl() {
    no_client_certificate_then_good("openssl");
}

/// A client that does not trust the CA of nsh's certificate (it is given
/// other-ca.crt) ends the handshake with fatal alert unknown_ca; nsh's one
/// line names the alert (RFC 5246 name and number) and its usual cause,
/// and a good client registers afterwards. `client` runs the distrusting
/// client against the port and returns its output.
fn distrusting_client_then_good(client: impl FnOnce(u16) -> String) {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "-c",
        AFTER_SCRIPT,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    let said = client(port);
    let failed = nsh.wait_line(|l| l.contains("DTLS"), 10);
    assert!(
        failed.starts_with("DTLS handshake with 127.0.0.1:")
            && failed.ends_with(
                " failed: the client sent fatal alert unknown_ca (48): it does not trust \
                 the CA of nsh's certificate (mbed TLS: SslFatalAlertMessage)"
            ),
        "{failed}\n{}\nclient: {said}",
        nsh.seen()
    );
    let good = register_with_cert("openssl", port, "client", "cert-after");
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}");
    assert!(!good.contains("cannot send"), "{good}");
    assert_eq!(out.matches("DTLS handshake with").count(), 1, "{out}");
}

#[test]
fn a_client_that_does_not_trust_nsh_is_named_by_its_alert_openssl() {
    distrusting_client_then_good(|port| {
        let uri = format!("coaps://127.0.0.1:{port}/rd?ep=distrust&lt=60");
        coap_client(
            "openssl",
            &["-m", "post", "-C", &cert("other-ca.crt"), &uri],
        )
    });
}

#[test]
fn a_client_that_does_not_trust_nsh_is_named_by_its_alert_gnutls() {
    distrusting_client_then_good(|port| {
        let uri = format!("coaps://127.0.0.1:{port}/rd?ep=distrust&lt=60");
        coap_client("gnutls", &["-m", "post", "-C", &cert("other-ca.crt"), &uri])
    });
}

#[test]
fn a_client_that_does_not_trust_nsh_is_named_by_its_alert_s_client() {
    distrusting_client_then_good(|port| {
        s_client(
            port,
            &["-CAfile", &cert("other-ca.crt"), "-verify_return_error"],
        )
    });
}

/// openssl s_client with client.crt and only ECDHE-ECDSA-AES128-CCM8
/// offered establishes a session with nsh (trusting ca.crt), which names
/// the client's subject.
#[test]
fn openssl_s_client_with_a_client_certificate_establishes_ccm8() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        r#"wait_for("Register", 30);"#,
    ]);
    let out = s_client(
        nsh.port,
        &[
            "-cert",
            &cert("client.crt"),
            "-key",
            &cert("client.key"),
            "-CAfile",
            &cert("ca.crt"),
            "-verify_return_error",
            "-cipher",
            "ECDHE-ECDSA-AES128-CCM8",
        ],
    );
    let line = nsh.wait("DTLS", 10);
    assert!(out.contains("CONNECTION ESTABLISHED"), "{out}");
    assert!(
        out.contains("Ciphersuite: ECDHE-ECDSA-AES128-CCM8"),
        "{out}"
    );
    assert!(out.contains("Verification: OK"), "{out}");
    assert!(
        line.starts_with("DTLS session with 127.0.0.1:")
            && line.ends_with(
                " established (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, identity `CN=urn:nsh:client-1`)"
            ),
        "{line}"
    );
}

/// Without a CA any client certificate is accepted (stranger.crt, from
/// another CA, registers as `CN=urn:nsh:stranger`), and so is a client
/// with no certificate at all (no identity).
#[test]
fn without_a_ca_any_client_certificate_or_none_is_accepted() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt"),
        "--key-file",
        &cert("server.key"),
        "-c",
        r#"
print("@@go");
let r = wait_for(#{kind: "Register", endpoint: "stranger"}, 20);
assert_eq(r.identity, "CN=urn:nsh:stranger");
assert_eq(clients()[0].identity, "CN=urn:nsh:stranger");
print("@@stranger-ok");
let r = wait_for(#{kind: "Register", endpoint: "nocert"}, 20);
assert_eq(type_of(r.identity), "()");
assert_eq(clients().len(), 2);
print("@@done");
"#,
    ]);
    let port = nsh.port;
    assert!(
        nsh.seen().contains("(certificate ")
            && nsh.seen().contains(", any client certificate) port "),
        "{}",
        nsh.seen()
    );
    nsh.wait("@@go", 10);
    let stranger = register_with_cert("openssl", port, "stranger", "stranger");
    let line1 = nsh.established();
    nsh.wait("@@stranger-ok", 10);
    let nocert = coap_client(
        "openssl",
        &[
            "-m",
            "post",
            "-e",
            "</3/0>",
            &format!("coaps://127.0.0.1:{port}/rd?ep=nocert&lt=60"),
        ],
    );
    let line2 = nsh.established();
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}\n{stranger}\n{nocert}");
    assert!(
        line1.ends_with(
            " established (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, identity `CN=urn:nsh:stranger`)"
        ),
        "{line1}"
    );
    assert!(
        line2.starts_with("DTLS session with 127.0.0.1:")
            && line2.ends_with(" established (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8)"),
        "{line2}"
    );
    assert!(!out.contains("DTLS handshake with"), "{out}");
}

/// The server's certificate and key in DER are read as well as PEM: a
/// client trusting ca.crt registers.
#[test]
fn a_der_certificate_and_key_serve_like_pem() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--crt-file",
        &cert("server.crt.der"),
        "--key-file",
        &cert("server.key.der"),
        "--ca-file",
        &cert("ca.crt"),
        "-c",
        r#"
print("@@go");
let r = wait_for(#{kind: "Register", endpoint: "der"}, 20);
assert_eq(r.identity, "CN=urn:nsh:client-1");
print("@@done");
"#,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    // -C ca.crt: the client checks the DER-loaded certificate too.
    let client = register_with_cert("openssl", port, "client", "der");
    let line = nsh.wait("DTLS", 10);
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}\n{client}");
    assert!(
        line.ends_with(
            " established (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, identity `CN=urn:nsh:client-1`)"
        ),
        "{line}"
    );
    assert!(!client.contains("cannot send"), "{client}");
}

fn nsh_output(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(nsh_bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run nsh");
    (o.status.code(), text(&o))
}

/// Errors at start: a key that does not match the certificate, a missing
/// certificate file, PSK and certificates together; and `listen` with a
/// bad key in a script is an error the script can catch, after which it
/// goes on.
#[test]
fn certificate_errors_at_start_name_the_files() {
    let (crt, bad) = (cert("server.crt"), cert("mismatch.key"));
    // With a script, nsh stops before running it.
    let (code, all) = nsh_output(&[
        "-l",
        "0",
        "--crt-file",
        &crt,
        "--key-file",
        &bad,
        "-c",
        r#"print("@@ran")"#,
    ]);
    assert_eq!(code, Some(1), "{all}");
    assert!(!all.contains("@@ran"), "{all}");
    assert!(
        all.contains(&format!(
            "key_file {bad} does not match the certificate in crt_file {crt}"
        )),
        "{all}"
    );
    assert!(!all.contains("listening on"), "{all}");

    let missing = cert("missing.crt");
    let (code, all) = nsh_output(&[
        "-l",
        "0",
        "--crt-file",
        &missing,
        "--key-file",
        &cert("server.key"),
        "-c",
        r#"print("@@ran")"#,
    ]);
    assert_eq!(code, Some(1), "{all}");
    assert!(!all.contains("@@ran"), "{all}");
    assert!(
        all.contains(&format!("crt_file {missing}: no such file")),
        "{all}"
    );

    let (code, all) = nsh_output(&[
        "-l",
        "0",
        "--crt-file",
        &crt,
        "--key-file",
        &cert("server.key"),
        "--psk-identity",
        "user",
        "--psk-key",
        "password",
    ]);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains("Cannot use PSK and Certificates at the same time"),
        "{all}"
    );

    let script = format!(
        r#"try {{ listen(0, #{{crt_file: "{crt}", key_file: "{bad}"}}); }} catch (e) {{ print("@@caught " + e); }}
print("@@after");"#
    );
    let (code, all) = nsh_output(&["-c", &script]);
    assert_eq!(code, Some(0), "{all}");
    let caught = all
        .lines()
        .find(|l| l.starts_with("@@caught "))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        caught.contains(&format!(
            "key_file {bad} does not match the certificate in crt_file {crt}"
        )),
        "{caught}"
    );
    assert!(all.contains("@@after"), "{all}");
    assert!(!all.contains("listening on"), "{all}");
}

/// A PSK table (`--psk-file` of `identity,hexkey` lines): two clients with
/// their own identity and key register as that identity; a wrong key and
/// an unknown identity each give one line naming the peer and why; the
/// known identities are still answered afterwards.
#[test]
fn a_psk_table_tells_identities_apart_and_names_failures() {
    let dir = std::env::temp_dir().join(format!("nsh-psk-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("keys.csv");
    std::fs::write(
        &table,
        format!("dev-a,{}\ndev-b,{}\n", hex("key-of-a"), hex("key-of-b")),
    )
    .unwrap();
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--psk-file",
        &table.display().to_string(),
        "-c",
        r#"
print("@@go");
let a = wait_for(#{kind: "Register", endpoint: "psk-a"}, 20);
assert_eq(a.identity, "dev-a");
let b = wait_for(#{kind: "Register", endpoint: "psk-b"}, 20);
assert_eq(b.identity, "dev-b");
let a2 = wait_for(#{kind: "Register", endpoint: "psk-a2"}, 30);
assert_eq(a2.identity, "dev-a");
let b2 = wait_for(#{kind: "Register", endpoint: "psk-b2"}, 30);
assert_eq(b2.identity, "dev-b");
let ids = clients().map(|c| c.endpoint + "=" + c.identity);
ids.sort();
assert_eq(ids, ["psk-a2=dev-a", "psk-a=dev-a", "psk-b2=dev-b", "psk-b=dev-b"]);
print("@@done");
"#,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    let a = register_with_psk(port, "dev-a", "key-of-a", "psk-a");
    let b = register_with_psk(port, "dev-b", "key-of-b", "psk-b");
    let wrong = register_with_psk(port, "dev-a", "key-of-b", "psk-wrong");
    let wrong_line = nsh.wait("DTLS handshake with", 10);
    let unknown = register_with_psk(port, "dev-x", "key-of-a", "psk-unknown");
    let unknown_line = nsh.wait("DTLS handshake with", 10);
    let a2 = register_with_psk(port, "dev-a", "key-of-a", "psk-a2");
    let b2 = register_with_psk(port, "dev-b", "key-of-b", "psk-b2");
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{out}\n{err}\n{wrong}\n{unknown}");
    for (name, client) in [("a", &a), ("b", &b), ("a2", &a2), ("b2", &b2)] {
        assert!(!client.contains("cannot send"), "{name}: {client}");
    }
    assert!(wrong.contains("cannot send CoAP pdu"), "{wrong}");
    assert!(unknown.contains("cannot send CoAP pdu"), "{unknown}");
    assert!(
        wrong_line.starts_with("DTLS handshake with 127.0.0.1:")
            && wrong_line.contains(" failed: ")
            && wrong_line.contains("wrong PSK key?"),
        "{wrong_line}\n{out}"
    );
    assert!(
        unknown_line.starts_with("DTLS handshake with 127.0.0.1:")
            && unknown_line.contains(" failed: unknown PSK identity `dev-x` ("),
        "{unknown_line}\n{out}"
    );
    assert_eq!(out.matches("DTLS handshake with").count(), 2, "{out}");
    assert!(
        !out.contains("psk-wrong") && !out.contains("psk-unknown"),
        "{out}"
    );
    for (ep, id) in [("psk-a", "dev-a"), ("psk-b", "dev-b")] {
        assert!(
            out.contains(&format!("<- Register /rd?ep={ep}&lt=60: </3/0>")),
            "{out}"
        );
        assert!(out.contains(&format!("identity `{id}`)")), "{out}");
    }
}

/// `--psk-key-hex`: the key given in hex, used by a client that has it as
/// text (`password`).
#[test]
fn a_psk_key_given_in_hex_matches_the_same_key_as_text() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "--psk-identity",
        "user",
        "--psk-key-hex",
        "70617373776f7264",
        "-c",
        r#"
print("@@go");
let r = wait_for(#{kind: "Register", endpoint: "hexkey"}, 20);
assert_eq(r.identity, "user");
print("@@done");
"#,
    ]);
    let port = nsh.port;
    nsh.wait("@@go", 10);
    let client = register_with_psk(port, "user", "password", "hexkey");
    let line = nsh.wait("DTLS", 10);
    nsh.wait("@@done", 10);
    let (status, out, err) = nsh.finish(10);
    assert!(status.success(), "{out}\n{err}\n{client}");
    assert!(
        line.ends_with(" established (TLS_PSK_WITH_AES_128_CCM_8, identity `user`)"),
        "{line}"
    );
}

/// `openssl s_client` with a PSK (`user`/`password`) offering `cipher`.
fn s_client_psk(port: u16, cipher: &str) -> String {
    s_client(
        port,
        &[
            "-psk_identity",
            "user",
            "-psk",
            "70617373776f7264",
            "-cipher",
            cipher,
        ],
    )
}

const PSK_FLAGS: [&str; 4] = ["--psk-identity", "user", "--psk-key", "password"];

/// Starts nsh with a PSK, `extra` flags and a script that waits (the test
/// ends it).
fn psk_server(extra: &[&str]) -> LiveNsh {
    let mut args = vec!["-l", "0"];
    args.extend_from_slice(&PSK_FLAGS);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-c", r#"wait_for("Register", 30);"#]);
    LiveNsh::start(&args)
}

/// A client that asks to renegotiate an established session (`openssl
/// s_client`'s `R` command) is refused (mbed TLS answers no_renegotiation)
/// and ends the session with an encrypted fatal alert, which nsh decrypts:
/// its line says that, and names the alert.
#[test]
fn a_client_that_asks_to_renegotiate_is_told_as_such() {
    use std::io::Write;
    let mut nsh = psk_server(&[]);
    let mut client = Command::new("openssl")
        .args(["s_client", "-dtls1_2", "-connect"])
        .arg(format!("127.0.0.1:{}", nsh.port))
        .args([
            "-psk_identity",
            "user",
            "-psk",
            "70617373776f7264",
            "-cipher",
            "PSK-AES128-CCM8",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is missing: run `bash tests/setup.sh`");
    nsh.wait("DTLS session with", 10);
    let mut input = client.stdin.take().expect("piped stdin");
    input.write_all(b"R\n").expect("s_client reads its input");
    let ended = nsh.wait("DTLS session with", 10);
    drop(input);
    let said = text(&client.wait_with_output().expect("s_client ends"));
    assert!(said.contains("RENEGOTIATING"), "{said}");
    assert!(
        ended.starts_with("DTLS session with 127.0.0.1:")
            && ended.ends_with(
                " ended: the client asked to renegotiate, which nsh does not do, and sent \
                 fatal alert handshake_failure (40) (mbed TLS: SslFatalAlertMessage)"
            ),
        "{ended}"
    );
}

/// `--ciphersuites TLS_PSK_WITH_AES_128_CCM`: a client offering only
/// CCM_8 finds no suite in common, one offering CCM gets it.
#[test]
fn ciphersuites_narrow_what_nsh_accepts() {
    let mut nsh = psk_server(&["--ciphersuites", "TLS_PSK_WITH_AES_128_CCM"]);
    let port = nsh.port;
    let ccm8 = s_client_psk(port, "PSK-AES128-CCM8");
    let refused = nsh.wait("DTLS", 10);
    let ccm = s_client_psk(port, "PSK-AES128-CCM");
    let established = nsh.wait("DTLS session with", 10);
    assert!(!ccm8.contains("CONNECTION ESTABLISHED"), "{ccm8}");
    assert!(
        refused.starts_with("DTLS handshake with 127.0.0.1:")
            && refused.contains(" failed: no cipher suite in common ("),
        "{refused}\n{}",
        nsh.seen()
    );
    assert!(ccm.contains("CONNECTION ESTABLISHED"), "{ccm}");
    assert!(ccm.contains("Ciphersuite: PSK-AES128-CCM\n"), "{ccm}");
    assert!(
        established.ends_with(" established (TLS_PSK_WITH_AES_128_CCM, identity `user`)"),
        "{established}"
    );
}

/// One PSK handshake with s_client; nsh's stdout and stderr, and the
/// client's address as nsh names it.
fn one_handshake(extra: &[&str]) -> (String, String, String) {
    let mut nsh = psk_server(extra);
    let port = nsh.port;
    let client = s_client_psk(port, "PSK-AES128-CCM8");
    let line = nsh.wait("DTLS session with", 10);
    nsh.wait("closed its session", 10);
    let peer = line
        .strip_prefix("DTLS session with ")
        .and_then(|r| r.split_once(' '))
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(client.contains("CONNECTION ESTABLISHED"), "{client}");
    let (_, out, err) = nsh.finish(0);
    (out, err, peer)
}

/// `--debug`: mbed TLS's handshake lines on stderr, each starting with the
/// client's address; without it, none.
#[test]
fn debug_prints_mbed_tls_lines_prefixed_with_the_peer() {
    let (out, err, peer) = one_handshake(&["--debug", "2"]);
    let states: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{peer} [2] ssl_srv.c:")) && l.contains(": server state: ")
        })
        .collect();
    assert!(states.len() >= 5, "{peer}\n{err}\n{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("{peer} [2] ")) && l.ends_with("<= handshake")),
        "{err}"
    );
    let (out, err, _) = one_handshake(&[]);
    assert!(!err.contains("ssl_srv.c"), "{err}\n{out}");
    assert!(!err.contains("server state"), "{err}\n{out}");
}

/// `file_server` over DTLS with a PSK, in the background while the script
/// goes on: coap-client-openssl downloads a 5,000-byte file (Block2)
/// byte for byte.
#[test]
fn a_file_server_with_a_psk_serves_a_block2_download() {
    let dir = std::env::temp_dir().join(format!("nsh-secure-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("file.bin"), &data).unwrap();
    let script = format!(
        r#"let p = file_server("{}", #{{port: 0, psk_identity: "user", psk_key: "password", background: true}});
print("@@serving " + p);
wait_for("Register", 30);"#,
        dir.display()
    );
    let mut nsh = LiveNsh::start(&["-c", &script]);
    let port = nsh.port;
    let marker = nsh.wait("@@serving", 10);
    assert_eq!(marker, format!("@@serving {port}"));
    let copy = dir.join("copy.bin");
    let client = coap_client(
        "openssl",
        &[
            "-u",
            "user",
            "-k",
            "password",
            "-o",
            copy.to_str().unwrap(),
            &format!("coaps://127.0.0.1:{port}/file.bin"),
        ],
    );
    let line = nsh.wait("DTLS session with", 10);
    nsh.wait("closed its session", 10);
    let got = std::fs::read(&copy).unwrap_or_default();
    let (_, out, _) = nsh.finish(0);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        line.starts_with("file server: DTLS session with 127.0.0.1:")
            && line.ends_with(" established (TLS_PSK_WITH_AES_128_CCM_8, identity `user`)"),
        "{line}"
    );
    assert_eq!(got.len(), 5000, "{client}\n{out}");
    assert!(got == data, "the download differs from the file");
    assert_eq!(out.matches("<- GET /file.bin").count(), 5, "{out}");
    assert!(
        out.contains("-> Content (42 (APPLICATION_OCTET_STREAM); 904 bytes)"),
        "{out}"
    );
}

/// `--dtls-idle-timeout 1`: a session that stays idle (s_client waiting on
/// its stdin) ends after a second, with one line.
#[test]
fn an_idle_session_ends_after_the_idle_timeout() {
    let mut nsh = psk_server(&["--dtls-idle-timeout", "1"]);
    let port = nsh.port;
    let mut client = Command::new("openssl")
        .args(["s_client", "-dtls1_2", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-psk_identity",
            "user",
            "-psk",
            "70617373776f7264",
            "-cipher",
            "PSK-AES128-CCM8",
            "-brief",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is missing: run `bash tests/setup.sh`");
    let established = nsh.wait("DTLS session with", 10);
    let start = Instant::now();
    let ended = nsh.wait("DTLS session with", 5);
    let took = start.elapsed();
    let _ = client.kill();
    let _ = client.wait();
    let peer = established
        .strip_prefix("DTLS session with ")
        .and_then(|r| r.split_once(' '))
        .map(|(p, _)| p)
        .unwrap_or_else(|| panic!("{established}"));
    assert!(established.contains(" established ("), "{established}");
    assert_eq!(
        ended,
        format!("DTLS session with {peer} ended: idle for 1 s")
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let (_, out, _) = nsh.finish(0);
    assert_eq!(out.matches("ended: idle").count(), 1, "{out}");
}
