//! DTLS Connection ID (mbed TLS 2.28: draft-ietf-tls-dtls-connection-id-05,
//! extension 254). A client that negotiated a CID with nsh keeps its session
//! and its registration when its address changes (NAT rebinding): the
//! client here is a second nsh opening a DTLS session with `connect …
//! connection_id=…` through a UDP relay (tests/it/relay.rs) that switches
//! its source port between the Register and the Update. And mbed TLS's own
//! test client, `ssl_client2` built from the sources the `mbedtls-sys-auto`
//! crate ships (tests/peers/build-ssl-client2.sh), negotiates a CID with
//! nsh and shows nsh's.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::harness::{LiveNsh, listening_port, repo, run_nsh};
use crate::relay::Relay;

/// The server: waits for the Register, then for the Update that arrives
/// from the relay's new port, and checks the registration followed it.
const SERVER: &str = r#"
let reg = wait_for(#{kind: "Register", endpoint: "cid-dev"}, 30);
assert_eq(reg.identity, "user");
print("@@registered " + reg.peer);
let upd = wait_for("Update", 30);
assert(upd.peer != reg.peer, "the Update comes from the new address");
let cs = clients();
assert_eq(cs.len(), 1);
assert_eq(cs[0].endpoint, "cid-dev");
assert_eq(cs[0].peer, upd.peer);
assert_eq(cs[0].location, "/rd/1");
assert_eq(cs[0].identity, "user");
// The answer goes back on the same session, to the new address.
let changed = [];
for i in 0..100 {
    changed = history(4).filter(|m| m.kind == "Changed" && m.direction == "sent");
    if changed.len() > 0 { break; }
    sleep(0.05);
}
assert_eq(changed[0].peer, upd.peer);
print("@@moved-ok");
"#;

/// A line-at-a-time nsh (piped input) acting as the client.
struct Client(LiveNsh);

impl Client {
    fn start() -> Client {
        Client(LiveNsh::piped(&[]))
    }

    /// Sends one line and waits for a line containing `marker`.
    fn run(&mut self, line: &str, marker: &str) -> String {
        self.0.send_line(line);
        self.0.wait(marker, 30)
    }
}

#[test]
fn a_client_whose_address_changes_keeps_its_dtls_session_and_registration() {
    let dir = std::env::temp_dir().join(format!("nsh-cid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server.rhai");
    std::fs::write(&script, SERVER).unwrap();
    let mut relay: Option<Relay> = None;
    let mut client: Option<Client> = None;
    let mut first_port = 0;
    let run = run_nsh(
        &[
            "-l",
            "0",
            "--psk-identity",
            "user",
            "--psk-key",
            "password",
            "--connection-id",
            "nsh-cid",
            &script.display().to_string(),
        ],
        Duration::from_secs(90),
        |line| {
            if let Some(port) = listening_port(line) {
                assert!(line.contains("Connection ID 6e73682d636964"), "{line}");
                let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
                let r = Relay::start(target);
                let mut c = Client::start();
                c.run(
                    &format!(
                        "connect(\"127.0.0.1\", {}, #{{psk_identity: \"user\", psk_key: \"password\", connection_id: \"0xc1d0\"}}); print(\"@@connected\");",
                        r.port()
                    ),
                    "@@connected",
                );
                c.run(
                    "let c = register(\"/rd?ep=cid-dev&lt=300\", #{content: \"</3/0>\"}); print(\"@@created \" + c.code_name);",
                    "@@created",
                );
                first_port = r.upstream_port();
                relay = Some(r);
                client = Some(c);
            } else if line.starts_with("@@registered") {
                assert!(line.ends_with(&format!(":{first_port}")), "{line}");
                let r = relay.as_ref().expect("relay");
                let new_port = r.rebind();
                assert_ne!(new_port, first_port);
                let c = client.as_mut().expect("client");
                let done = c.run(
                    "let u = update(\"/rd/1\"); print(\"@@updated \" + u.code_name);",
                    "@@updated",
                );
                assert!(done.contains("RES_CHANGED"), "{done}\n{}", c.0.seen());
            }
        },
    );
    run.assert_ok();
    assert!(run.stdout.contains("@@moved-ok"), "{}", run.stdout);
    // One session, negotiated once, that moved: with the line saying so.
    assert_eq!(
        run.stdout.matches("established").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Connection ID: nsh's 6e73682d636964, the peer's c1d0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("moved to 127.0.0.1:")
            && run
                .stdout
                .contains("registration of cid-dev follows its DTLS session from"),
        "{}",
        run.stdout
    );
}

/// Builds mbed TLS's ssl_client2 with Connection ID (once per test run,
/// whichever test asks first; the script itself skips an up-to-date build).
fn ssl_client2() -> String {
    static BUILT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_ssl_client2).clone()
}

fn build_ssl_client2() -> String {
    let out = Command::new("bash")
        .arg("tests/peers/build-ssl-client2.sh")
        .current_dir(repo())
        .output()
        .expect("run tests/peers/build-ssl-client2.sh");
    assert!(
        out.status.success(),
        "building ssl_client2 failed (needs cmake, make, cc: bash tests/setup.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs nsh with `flags` until ssl_client2 (with `client_args`) has done
/// its handshake and sent its one (non-CoAP) request; returns nsh's and
/// the client's output.
fn ssl_client2_against_nsh(flags: &[&str], client_args: &[&str]) -> (String, String) {
    let client = ssl_client2();
    let mut args: Vec<&str> = vec!["-l", "0"];
    args.extend_from_slice(flags);
    // ssl_client2 sends `GET / HTTP/1.0`: a malformed CoAP datagram.
    args.extend_from_slice(&["-c", "wait_for(#{role: \"malformed\"}, 20);"]);
    let mut client_out = String::new();
    let run = run_nsh(&args, Duration::from_secs(60), |line| {
        if let Some(port) = listening_port(line) {
            let out = Command::new(&client)
                .args(["dtls=1", "cid=1", "server_addr=127.0.0.1"])
                .arg(format!("server_port={port}"))
                // One request, no answer awaited for long.
                .args(["read_timeout=300", "max_resend=0"])
                .args(client_args)
                .current_dir(repo())
                .output()
                .expect("run ssl_client2");
            client_out = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    run.assert_ok();
    (run.stdout, client_out)
}

#[test]
fn ssl_client2_negotiates_a_connection_id_with_nsh_over_psk() {
    let (nsh, client) = ssl_client2_against_nsh(
        &[
            "--psk-identity",
            "user",
            "--psk-key",
            "password",
            "--connection-id",
            "nsh-cid",
        ],
        &[
            "psk=70617373776f7264",
            "psk_identity=user",
            "force_ciphersuite=TLS-PSK-WITH-AES-128-CCM-8",
            "crt_file=none",
            "key_file=none",
        ],
    );
    // The client shows the CID nsh asked for: "nsh-cid".
    assert!(
        client.contains("(initial handshake) Use of Connection ID has been negotiated.")
            && client.contains("Peer CID (length 7 Bytes): 6e 73 68 2d 63 69 64"),
        "{client}"
    );
    assert!(
        nsh.contains("Connection ID: nsh's 6e73682d636964, the peer's empty"),
        "{nsh}"
    );
}

#[test]
fn ssl_client2_negotiates_a_connection_id_with_nsh_over_certificates() {
    let certs = "tests/fixtures/certs";
    let (nsh, client) = ssl_client2_against_nsh(
        &[
            "--crt-file",
            &format!("{certs}/server.crt"),
            "--key-file",
            &format!("{certs}/server.key"),
            "--ca-file",
            &format!("{certs}/ca.crt"),
            "--connection-id",
            "0xbeef",
        ],
        &[
            "server_name=localhost",
            &format!("crt_file={certs}/client.crt"),
            &format!("key_file={certs}/client.key"),
            &format!("ca_file={certs}/ca.crt"),
            "auth_mode=required",
            "cid_val=c1",
        ],
    );
    assert!(
        client.contains("Peer CID (length 2 Bytes): be ef"),
        "{client}"
    );
    assert!(
        nsh.contains(
            "(TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, identity `CN=urn:nsh:client-1`, Connection ID: nsh's beef, the peer's c1)"
        ),
        "{nsh}"
    );
}
