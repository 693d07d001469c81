//! CoAP over DTLS 1.2 with a pre-shared key, against libcoap's
//! `coap-client-openssl` (Debian libcoap3-bin) and `openssl s_client`: nsh
//! started with `--psk-identity user --psk-key password`, its script
//! listening on a free port (`listen(0)`).

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{listening_port, run_nsh};

/// The script nsh runs; markers tell the test when to start each peer.
const SCRIPT: &str = r#"
listen(0);
print("@@register");
let a = wait_for("Register", 20);
let b = wait_for("Register", 20);
let names = [a.endpoint, b.endpoint];
names.sort();
assert_eq(names, ["dtls-a", "dtls-b"]);
assert_eq(a.lifetime, 300);
assert_eq(a.links.map(|l| l.path), ["/1/0", "/3/0"]);
assert_eq(clients().len(), 2);
assert(a.peer != b.peer, "two peers");
// The auto-responder answers as each Register arrives.
let created = [];
for i in 0..100 {
    created = history(6).filter(|m| m.kind == "Created" && m.direction == "sent");
    if created.len() >= 2 {
        break;
    }
    sleep(0.05);
}
assert_eq(created.len(), 2, "Created sent to each");
// The test runs a client with the wrong key, then openssl, then registers
// `dtls-end` with the right key once both are done.
print("@@wrongkey");
wait_for(#{kind: "Register", endpoint: "dtls-end"}, 60);
print("@@done");
"#;

fn coap_client(user: &str, key: &str, uri: &str) -> Output {
    Command::new("coap-client-openssl")
        .args([
            "-v", "6", "-U", "-u", user, "-k", key, "-m", "post", "-t", "40", "-e",
            "</1/0>,</3/0>", "-B", "5", uri,
        ])
        .output()
        .expect(
            "coap-client-openssl is missing: run `bash tests/setup.sh` (Debian package libcoap3-bin)",
        )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn registers_over_dtls_psk_are_answered_and_a_wrong_key_is_reported() {
    let mut port = 0;
    let dir = std::env::temp_dir().join(format!("nsh-dtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("dtls.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let outputs: Arc<Mutex<Vec<(String, Output)>>> = Arc::default();
    let mut threads = Vec::new();
    let run = run_nsh(
        &[
            "--psk-identity",
            "user",
            "--psk-key",
            "password",
            &script.display().to_string(),
        ],
        Duration::from_secs(60),
        |line| {
            if let Some(p) = listening_port(line) {
                port = p;
                return;
            }
            let base = format!("coaps://127.0.0.1:{port}");
            let uri = move |ep: &str| format!("{base}/rd?ep={ep}&lt=300&lwm2m=1.1&b=U");
            let mut spawn = |name: &'static str, user: &'static str, key: &'static str, ep| {
                let uri = uri(ep);
                let outputs = outputs.clone();
                threads.push(std::thread::spawn(move || {
                    let o = coap_client(user, key, &uri);
                    outputs.lock().unwrap().push((name.to_string(), o));
                }));
            };
            if line.contains("@@register") {
                // Two clients at once: one socket, two sessions.
                spawn("a", "user", "password", "dtls-a");
                spawn("b", "user", "password", "dtls-b");
            } else if line.contains("@@wrongkey") {
                // One after the other; the last Register tells the script
                // the others are done.
                let outputs = outputs.clone();
                let (wrong, end) = (uri("dtls-wrong"), uri("dtls-end"));
                threads.push(std::thread::spawn(move || {
                    let o = coap_client("user", "not-the-key", &wrong);
                    outputs.lock().unwrap().push(("wrong".into(), o));
                    let o = Command::new("openssl")
                        .args([
                            "s_client",
                            "-dtls1_2",
                            "-connect",
                            &format!("127.0.0.1:{port}"),
                            "-psk_identity",
                            "user",
                            "-psk",
                            "70617373776f7264",
                            "-cipher",
                            "PSK-AES128-CCM8",
                        ])
                        .stdin(std::process::Stdio::null())
                        .output()
                        .expect("openssl is missing: run `bash tests/setup.sh`");
                    outputs.lock().unwrap().push(("openssl".into(), o));
                    let o = coap_client("user", "password", &end);
                    outputs.lock().unwrap().push(("end".into(), o));
                }));
            }
        },
    );
    for t in threads {
        t.join().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    let outputs = outputs.lock().unwrap();
    let get = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| text(o))
            .unwrap_or_else(|| panic!("{name} did not run"))
    };

    // Both registrations: coap-client shows the 2.01 it decrypted.
    for name in ["a", "b"] {
        let out = get(name);
        assert!(out.contains("t:ACK c:2.01"), "client {name}:\n{out}");
        assert!(out.contains("Location-Path:rd"), "client {name}:\n{out}");
    }
    assert_eq!(
        run.stdout
            .matches("established (TLS_PSK_WITH_AES_128_CCM_8, identity `user`)")
            .count(),
        4,
        "three coap-clients with the right key and openssl:\n{}",
        run.stdout
    );
    for ep in ["dtls-a", "dtls-b"] {
        assert!(
            run.stdout
                .contains(&format!("<- Register /rd?ep={ep}&lt=300&lwm2m=1.1&b=U")),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("-> Created /rd/1"), "{}", run.stdout);
    assert!(run.stdout.contains("-> Created /rd/2"), "{}", run.stdout);

    // The wrong key: no answer for the client, one clear line from nsh
    // naming the peer.
    let wrong = get("wrong");
    assert!(!wrong.contains("c:2.01"), "{wrong}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("DTLS handshake with 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no handshake failure line:\n{}", run.stdout));
    assert!(line.contains("failed: "), "{line}");
    assert!(line.contains("wrong PSK key?"), "{line}");
    assert!(!run.stdout.contains("dtls-wrong"), "{}", run.stdout);

    // openssl negotiates the LwM2M suite.
    let ossl = get("openssl");
    assert!(ossl.contains("Cipher is PSK-AES128-CCM8"), "{ossl}");
    assert!(ossl.contains("DTLSv1.2"), "{ossl}");
}

#[test]
fn listen_with_a_psk_defaults_to_port_5684_and_names_the_identity() {
    // Port 5684 is held (by this test, or by whoever already has it), so
    // the default can only show as a refusal naming it.
    let _held = std::net::UdpSocket::bind("0.0.0.0:5684");
    let out = Command::new(crate::harness::nsh_bin())
        .args(["-c", "listen psk_identity=user psk_key=password"])
        .output()
        .expect("run nsh");
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("could not listen on port 5684 ("), "{all}");
    assert!(!all.contains("listening on"), "{all}");
    // On a free port it listens and names the identity.
    let out = Command::new(crate::harness::nsh_bin())
        .args(["-c", "listen 0 psk_identity=user psk_key=password"])
        .output()
        .expect("run nsh");
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let port =
        crate::harness::listening_port(&all).unwrap_or_else(|| panic!("no listening line:\n{all}"));
    assert!(
        all.contains(&format!(
            "listening on DTLS (PSK identity `user`) port {port}"
        )),
        "{all}"
    );
    assert_ne!(port, 0, "{all}");
}

#[test]
fn a_psk_identity_without_a_key_is_refused_with_one_line() {
    let out = Command::new(crate::harness::nsh_bin())
        .args(["-l", "--psk-identity", "user"])
        .output()
        .expect("run nsh");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--psk-identity needs --psk-key (or --psk-key-hex) too"),
        "{err}"
    );
}

/// wakatiwai (Wakaama, tinydtls) registers over DTLS with a PSK, answers a
/// read and de-registers, all through its DTLS session with nsh.
#[test]
fn wakatiwai_registers_and_is_read_over_dtls() {
    let run = crate::harness::run_with_peer_flags(
        "waka.js",
        "waka-dtls",
        &[("PSK_ID", "user"), ("PSK_KEY_HEX", "70617373776f7264")],
        &["--psk-identity", "user", "--psk-key", "password"],
        "dtls_e2e.rhai",
        &["waka-dtls"],
    );
    assert!(
        run.stdout.contains("DTLS session with 127.0.0.1:"),
        "{}",
        run.stdout
    );
}

/// The manual's bootstrap example (7.1.2.7.1) end to end: one nsh as a
/// plain bootstrap server fed the manual's command line through stdin, a
/// second started as `--psk-identity user --psk-key password` (both listen
/// on a free port and name it), and wakatiwai bootstrapping from the
/// first, then registering over DTLS with the written PSK to the second.
#[test]
fn the_manuals_bootstrap_example_moves_a_client_to_a_dtls_server() {
    // The DTLS server listens on a free port and names it.
    let dm_script = crate::harness::repo().join("tests/scripts/dm_register.rhai");
    let dm_args: [String; 6] = [
        "--psk-identity".into(),
        "user".into(),
        "--psk-key".into(),
        "password".into(),
        dm_script.display().to_string(),
        "waka-manual".into(),
    ];
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let dm = std::thread::spawn(move || {
        let argv: Vec<&str> = dm_args.iter().map(String::as_str).collect();
        crate::harness::run_nsh(&argv, std::time::Duration::from_secs(60), |line| {
            if let Some(p) = crate::harness::listening_port(line) {
                let _ = port_tx.send(p);
            }
        })
    });
    let dm_port = port_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the DTLS server names its port");
    // The bootstrap server: `listen 0` first, the client once it listens.
    // A LiveNsh: killed if the test fails while it waits for the client.
    let mut bs = crate::harness::LiveNsh::piped(&[]);
    bs.send_line("listen 0");
    let first = bs.wait_line(|l| listening_port(l).is_some(), 10);
    let bs_port = listening_port(&first).unwrap();
    let _peer =
        crate::harness::Peer::node("waka.js", bs_port, "waka-manual", &[("BOOTSTRAP", "1")]);
    let session = format!(
        "wait_for(\"RequestBootstrap\", 30);\n\
         bootstrap finish=True ssid=1 uri=coaps://127.0.0.1:{dm_port} security_mode=PreSharedKey psk_identity=user psk_key=password\n"
    );
    for line in session.lines() {
        bs.send_line(line);
    }
    bs.close_input();
    let (_, bs_text, _) = bs.finish(60);
    // wakatiwai's stray 5.00 after each answer may land between lines, so
    // the lines are checked one by one.
    assert!(
        bs_text.contains(&format!(
            "-> Write /0: APPLICATION_LWM2M_TLV, {} bytes\n",
            // 56 with the manual's 4-digit port 9500 (resource 16 left out).
            56 - 4 + dm_port.to_string().len()
        )),
        "{bs_text}"
    );
    assert!(
        bs_text.contains("-> Write /1: APPLICATION_LWM2M_TLV, 18 bytes\n"),
        "{bs_text}"
    );
    assert!(bs_text.contains("-> Bootstrap Finish /bs: \n"), "{bs_text}");
    assert_eq!(
        bs_text.matches("<- Changed (no location path)").count(),
        3,
        "{bs_text}"
    );
    let run = dm.join().unwrap();
    run.assert_ok();
    assert!(
        run.stdout.contains("DTLS session with 127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}
