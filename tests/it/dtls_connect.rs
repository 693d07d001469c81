//! `connect` as a DTLS client against real servers (`openssl s_server
//! -dtls1_2`, libcoap's coap-server-openssl) and against a port where
//! nothing listens: each failure says what happened (ICMP port
//! unreachable, the alert the server sent, where the handshake stalled, a
//! client certificate the server demands) instead of only that it did not
//! complete; `connect` with only `ca_file`; a request to a server that
//! restarted (and lost the session) says that may be why it went
//! unanswered, one a live server acknowledged does not; a request after
//! the server closed the session (close_notify) or ended it with a fatal
//! alert says which, and when; and the
//! `debug_level` alias of `debug`, which a Rhai map cannot name.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::KillOnDrop;
use crate::harness::{nsh_bin, repo, run_nsh};
use crate::libcoap::free_port_pair;

/// `openssl s_server -dtls1_2` on a random high port of 127.0.0.1, once it
/// accepts; killed on drop.
struct SServer {
    child: Child,
    port: u16,
    /// s_server's output lines (what a client sends shows there); kept
    /// read so s_server never blocks on a full pipe.
    lines: mpsc::Receiver<String>,
}

impl SServer {
    fn start(args: &[&str]) -> SServer {
        for attempt in 0..5u32 {
            let port = random_port(attempt);
            let mut child = Command::new("openssl")
                .args(["s_server", "-dtls1_2", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .args(args)
                .current_dir(repo())
                // Kept open: s_server ends at the end of its input.
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl is missing: run `bash tests/setup.sh`");
            let out = child.stdout.take().expect("piped stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            loop {
                match rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(line) if line.contains("ACCEPT") => {
                        return SServer {
                            child,
                            port,
                            lines: rx,
                        };
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            // The port was taken (or s_server failed): another one.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("openssl s_server did not start");
    }

    /// s_server with the fixtures' server certificate (issued by `ca.crt`)
    /// and no PSK.
    fn with_certificate() -> SServer {
        SServer::start(&[
            "-cert",
            "tests/fixtures/certs/server.crt",
            "-key",
            "tests/fixtures/certs/server.key",
        ])
    }

    /// Whether s_server printed a line containing `what` within `wait`.
    fn printed(&self, what: &str, wait: Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

/// A high port, different for each call.
fn random_port(salt: u32) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mix = nanos
        .wrapping_add(std::process::id().wrapping_mul(7919))
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(104729))
        .wrapping_add(salt);
    (20000 + mix % 40000) as u16
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `nsh -c SCRIPT`: exit code, stdout, stderr.
fn nsh(script: &str) -> (Option<i32>, String, String) {
    let o = Command::new(nsh_bin())
        .args(["-c", script])
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run nsh");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The error of `connect("127.0.0.1", PORT, OPTIONS)`, caught.
fn connect_error(port: u16, options: &str) -> String {
    let script = format!(
        r#"try {{ connect("127.0.0.1", {port}, {options}); print("@@connected"); }} catch (e) {{ print("@@error " + e); }}"#
    );
    let (code, out, err) = nsh(&script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    out.lines()
        .find_map(|l| l.strip_prefix("@@error "))
        .unwrap_or_else(|| panic!("connect did not fail:\n{out}\n{err}"))
        .to_string()
}

/// Nothing listens on the port: the ICMP port unreachable that comes back
/// ends the handshake with words saying so.
#[test]
fn connect_to_a_port_without_a_server_says_port_unreachable() {
    // A port just released: nothing listens there (the kernel answers
    // with ICMP port unreachable).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let e = connect_error(port, r#"#{psk_identity: "myid", psk_key: "secretPSK"}"#);
    assert!(
        e.contains(&format!(
            "no DTLS server at 127.0.0.1:{port}: port unreachable (ICMP)"
        )),
        "{e}"
    );
}

/// openssl s_server with another PSK drops nsh's Finished without a word
/// (DTLS discards records that do not decrypt): the error says where the
/// handshake stalled and what that likely means.
#[test]
fn connect_with_a_wrong_psk_key_says_the_server_did_not_answer_the_finished() {
    let server = SServer::start(&["-nocert", "-psk", "31323334", "-cipher", "PSK-AES128-CCM8"]);
    let e = connect_error(
        server.port,
        r#"#{psk_identity: "myid", psk_key: "wrong", timeout_s: 3}"#,
    );
    assert!(
        e.contains(&format!(
            "the DTLS handshake with 127.0.0.1:{} did not complete within 3.0 s: the server did not answer nsh's Finished (wrong PSK key or identity?)",
            server.port
        )),
        "{e}"
    );
}

/// openssl s_server with only a certificate shares no cipher suite with a
/// PSK client and says so with a fatal alert, which the error names.
#[test]
fn connect_names_the_alert_the_server_sent() {
    let server = SServer::with_certificate();
    let e = connect_error(
        server.port,
        r#"#{psk_identity: "myid", psk_key: "secretPSK"}"#,
    );
    assert!(
        e.contains(&format!(
            "the DTLS handshake with 127.0.0.1:{} failed: the server sent fatal alert handshake_failure (40): no cipher suite or credentials in common? (mbed TLS: SslFatalAlertMessage)",
            server.port
        )),
        "{e}"
    );
    assert!(!e.contains("did not complete"), "{e}");
}

/// nsh verifies the server's certificate with `ca_file` and it is issued
/// by another CA: the error says it is the server's certificate that was
/// rejected, and why (it said only "the certificate").
#[test]
fn connect_names_the_servers_certificate_when_it_is_rejected() {
    let server = SServer::with_certificate();
    let e = connect_error(
        server.port,
        r#"#{crt_file: "tests/fixtures/certs/client.crt", key_file: "tests/fixtures/certs/client.key", ca_file: "tests/fixtures/certs/other-ca.crt", timeout_s: 5}"#,
    );
    assert!(
        e.contains("failed: the server's certificate was rejected: issued by an unknown CA"),
        "{e}"
    );
}

/// `debug_level` is `debug` under a name a Rhai map can hold (`debug` is
/// a reserved word there), for `listen`, `file_server` and `connect`;
/// help says so.
#[test]
fn debug_level_is_debug_in_a_rhai_map() {
    let server = SServer::start(&["-nocert", "-psk", "31323334", "-cipher", "PSK-AES128-CCM8"]);
    let script = format!(
        r#"
listen(0, #{{psk_identity: "myid", psk_key: "1234", debug_level: 0}});
file_server(".", 0, #{{psk_identity: "myid", psk_key: "1234", debug_level: 0, background: true}});
file_server_stop();
connect("127.0.0.1", {}, #{{psk_identity: "myid", psk_key: "1234", debug_level: 1}});
print("@@connected");
try {{ listen(0, #{{psk_identity: "a", psk_key: "b", "debug": 1, debug_level: 2}}); }} catch (e) {{ print("@@both " + e); }}
help("connect");
"#,
        server.port
    );
    let (code, out, err) = nsh(&script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("@@connected"), "{out}\n{err}");
    // mbed TLS's lines, prefixed with the peer.
    assert!(
        err.contains(&format!("127.0.0.1:{} [", server.port)),
        "{err}"
    );
    let both = out
        .lines()
        .find(|l| l.starts_with("@@both "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(both.contains("`debug` and `debug_level`"), "{both}");
    assert!(out.contains("debug_level"), "{out}");
}

/// With only `ca_file`, nsh verifies the server's certificate and sends
/// none of its own, as libcoap's coap-client does: the session is made
/// and carries data (s_server prints what it receives).
#[test]
fn connect_with_only_a_ca_file_verifies_the_server_and_sends_no_certificate() {
    let server = SServer::with_certificate();
    let script = format!(
        r#"
connect("127.0.0.1", {}, #{{ca_file: "tests/fixtures/certs/ca.crt", timeout_s: 5}});
print("@@connected");
udp("nsh-was-here-over-dtls\n");
sleep(0.3);
"#,
        server.port
    );
    let (code, out, err) = nsh(&script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("@@connected"), "{out}\n{err}");
    assert!(
        server.printed("nsh-was-here-over-dtls", Duration::from_secs(5)),
        "s_server did not print nsh's datagram\n{out}\n{err}"
    );
    // The CA is used: a server certificate from another CA is refused
    // (by a fresh s_server: it serves one client at a time).
    let server = SServer::with_certificate();
    let e = connect_error(
        server.port,
        r#"#{ca_file: "tests/fixtures/certs/other-ca.crt", timeout_s: 5}"#,
    );
    assert!(
        e.contains("failed: the server's certificate was rejected: issued by an unknown CA"),
        "{e}"
    );
}

/// A server that demands a client certificate (s_server -Verify 1) from
/// nsh connecting with only `ca_file`: the error says the server asked for
/// one and how to give it.
#[test]
fn connect_with_only_a_ca_file_to_a_server_demanding_a_client_certificate_says_so() {
    let server = SServer::start(&[
        "-cert",
        "tests/fixtures/certs/server.crt",
        "-key",
        "tests/fixtures/certs/server.key",
        "-CAfile",
        "tests/fixtures/certs/ca.crt",
        "-Verify",
        "1",
    ]);
    let e = connect_error(
        server.port,
        r#"#{ca_file: "tests/fixtures/certs/ca.crt", timeout_s: 5}"#,
    );
    assert!(
        e.contains(&format!(
            "the DTLS handshake with 127.0.0.1:{} failed: the server asked for a client certificate and nsh has none to send: give crt_file and key_file (nsh's certificate and its private key) to `connect`",
            server.port
        )),
        "{e}"
    );
}

/// libcoap's coap-server-openssl with PSK `secretPSK`, plain CoAP on
/// `plain` and DTLS on the port after it, once it is up.
fn coap_server_openssl(plain: u16) -> KillOnDrop {
    let server = KillOnDrop(
        Command::new("coap-server-openssl")
            .args([
                "-A",
                "127.0.0.1",
                "-p",
                &plain.to_string(),
                "-k",
                "secretPSK",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("coap-server-openssl is missing: run `bash tests/setup.sh`"),
    );
    std::thread::sleep(Duration::from_millis(300));
    server
}

/// The DTLS server nsh connected to restarts (killed, so no close_notify;
/// started again on the same port) and drops nsh's records without a
/// word, as they belong to a session it no longer has: the request's
/// timeout says the server may have lost the session and that `connect`
/// makes a new one.
#[test]
fn a_request_to_a_restarted_dtls_server_says_the_session_may_be_lost() {
    let plain = free_port_pair();
    let dtls = plain + 1;
    let mut server = Some(coap_server_openssl(plain));
    let script = format!(
        r#"
connect("127.0.0.1", {dtls}, #{{psk_identity: "myid", psk_key: "secretPSK"}});
print("@@first " + coap_get("/time").code);
print("@@restart");
sleep(2);
try {{ coap_get("/time", #{{timeout_s: 1.5}}); print("@@answered"); }} catch (e) {{ print("@@error " + e); }}
set(#{{ack_timeout: 0.2, max_retransmit: 1}});
try {{ coap_get("/time"); print("@@answered"); }} catch (e) {{ print("@@gave-up " + e); }}
"#
    );
    let run = run_nsh(&["-c", &script], Duration::from_secs(60), |line| {
        if line == "@@restart" {
            drop(server.take());
            server = Some(coap_server_openssl(plain));
        }
    });
    run.assert_ok();
    assert!(run.stdout.contains("@@first 2.05"), "{}", run.stdout);
    let e = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@error "))
        .unwrap_or_else(|| panic!("no error:\n{}", run.stdout));
    assert!(
        e.contains("no response to `GET /time` within 1.5 s; nothing at all came from 127.0.0.1:"),
        "{e}"
    );
    assert!(
        e.contains("the DTLS server may have lost nsh's session (restarted?), and then drops nsh's records without a word; `connect` again makes a new session"),
        "{e}"
    );
    // Without timeout_s, once CoAP's retransmissions are spent: the same.
    let e = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@gave-up "))
        .unwrap_or_else(|| panic!("no error:\n{}", run.stdout));
    assert!(
        e.contains(
            "no response to `GET /time` after 2 transmissions; nothing at all came from 127.0.0.1:"
        ),
        "{e}"
    );
    assert!(
        e.contains("may have lost nsh's session (restarted?)"),
        "{e}"
    );
}

/// The server is alive and holds the session, and only the response is
/// late: coap-server's `/async?5` is acknowledged at once with an empty
/// ACK and answered 5 s later. The timeout says so, with no word of a
/// lost session.
#[test]
fn a_request_a_live_dtls_server_acknowledges_gets_no_lost_session_hint() {
    let plain = free_port_pair();
    let _server = coap_server_openssl(plain);
    let script = format!(
        r#"
connect("127.0.0.1", {}, #{{psk_identity: "myid", psk_key: "secretPSK"}});
try {{ coap_get("/async?5", #{{timeout_s: 1}}); print("@@answered"); }} catch (e) {{ print("@@error " + e); }}
"#,
        plain + 1
    );
    let run = run_nsh(&["-c", &script], Duration::from_secs(60), |_| {});
    run.assert_ok();
    let e = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@error "))
        .unwrap_or_else(|| panic!("no error:\n{}", run.stdout));
    assert!(e.contains("acknowledged it with an empty ACK"), "{e}");
    assert!(!e.contains("lost"), "{e}");
}

/// The error of a request after the session ended, from the script's
/// `@@error ` line.
fn error_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@error "))
        .unwrap_or_else(|| panic!("no error:\n{stdout}"))
}

/// libcoap's coap-server-openssl shuts down cleanly (SIGINT) and closes
/// nsh's session with an encrypted close_notify: a request after it fails
/// at once, saying the server closed the session, when, and that
/// `connect` again makes a new one (it said only that there was no
/// session, as if none had ever been made).
#[test]
fn a_request_after_the_dtls_server_closed_the_session_says_so_and_when() {
    let started = Instant::now();
    let (run, dtls, stopped) = with_server_stopped(
        r#"sleep(1.5);
try { coap_get("/time", #{timeout_s: 3}); print("@@answered"); } catch (e) { print("@@error " + e); }"#,
        Duration::ZERO,
    );
    assert!(
        run.stdout
            .contains(&format!("DTLS peer 127.0.0.1:{dtls} closed its session")),
        "{}",
        run.stdout
    );
    let e = error_line(&run.stdout);
    let start = format!(
        "coap_get: could not send `GET /time` to 127.0.0.1:{dtls}: the DTLS server 127.0.0.1:{dtls} closed nsh's session (close_notify) at "
    );
    assert!(e.starts_with(&start), "{e}");
    assert!(
        e.contains(" UTC (") && e.contains(" s ago); `connect` again makes a new session"),
        "{e}"
    );
    // At once, not after the request's timeout.
    assert!(
        started.elapsed() < Duration::from_secs(20) && stopped.elapsed() < Duration::from_secs(4),
        "{e}"
    );
}

/// coap-server-openssl acknowledges `/async?30` at once and would answer
/// it 30 s later; it is stopped meanwhile (SIGINT: it ends nsh's session
/// with an encrypted close_notify). The waiting request fails as soon as
/// the close_notify comes, saying so, instead of waiting out its 20 s for
/// an answer that can no longer come.
#[test]
fn a_request_waiting_when_the_dtls_server_closes_the_session_fails_at_once() {
    let (run, dtls, stopped) = with_server_stopped(
        r#"try { coap_get("/async?30", #{timeout_s: 20}); print("@@answered"); } catch (e) { print("@@error " + e); }"#,
        Duration::from_secs(1),
    );
    let e = error_line(&run.stdout);
    let start = format!(
        "coap_get: no response to `GET /async?30`: the DTLS server 127.0.0.1:{dtls} closed nsh's session (close_notify) at "
    );
    assert!(e.starts_with(&start), "{e}\n{}", run.stdout);
    assert!(e.ends_with("`connect` again makes a new session"), "{e}");
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "the request waited {:?} after the close_notify: {e}",
        stopped.elapsed()
    );
}

/// Runs `then` (script lines) after a `connect` to coap-server-openssl's
/// DTLS port and a first GET (checked answered); the server is stopped
/// (SIGINT: it ends nsh's session with an encrypted close_notify) `after`
/// the script printed `@@stop`, just before `then`. The run, the DTLS
/// port, and when the server was stopped.
fn with_server_stopped(then: &str, after: Duration) -> (crate::harness::Run, u16, Instant) {
    let plain = free_port_pair();
    let dtls = plain + 1;
    let server = coap_server_openssl(plain);
    let pid = server.0.id().to_string();
    let script = format!(
        r#"
connect("127.0.0.1", {dtls}, #{{psk_identity: "myid", psk_key: "secretPSK"}});
print("@@first " + coap_get("/time").code);
print("@@stop");
{then}
"#
    );
    let mut stopper = None;
    let run = run_nsh(&["-c", &script], Duration::from_secs(60), |line| {
        if line == "@@stop" {
            let pid = pid.clone();
            stopper = Some(std::thread::spawn(move || {
                std::thread::sleep(after);
                let _ = Command::new("kill").args(["-INT", &pid]).status();
                Instant::now()
            }));
        }
    });
    drop(server);
    run.assert_ok();
    assert!(run.stdout.contains("@@first 2.05"), "{}", run.stdout);
    let stopped = stopper
        .expect("the script reached @@stop")
        .join()
        .expect("the server was stopped");
    (run, dtls, stopped)
}

/// `openssl s_server -dtls1_2` is told to renegotiate (`R`): nsh's client
/// refuses (no_renegotiation), and the server ends the session with an
/// encrypted fatal alert. Its notice and a request's error after it name
/// the alert (which the record's encryption hid before), when it came,
/// and that `connect` again makes a new session.
#[test]
fn a_request_after_the_dtls_server_sent_a_fatal_alert_names_it() {
    let mut server = SServer::start(&["-nocert", "-psk", "73656372657450534b"]);
    let port = server.port;
    let script = format!(
        r#"
connect("127.0.0.1", {port}, #{{psk_identity: "myid", psk_key: "secretPSK"}});
print("@@up");
sleep(1.5);
try {{ coap_get("/time", #{{timeout_s: 3}}); print("@@answered"); }} catch (e) {{ print("@@error " + e); }}
"#
    );
    let mut stdin = server.child.stdin.take().expect("s_server's input");
    let run = run_nsh(&["-c", &script], Duration::from_secs(60), |line| {
        if line == "@@up" {
            use std::io::Write;
            stdin.write_all(b"R\n").unwrap();
            stdin.flush().unwrap();
        }
    });
    run.assert_ok();
    // OpenSSL sends handshake_failure (and might send unexpected_message,
    // as its TLS side now and then does, as the refusal meets its state).
    let named = ["handshake_failure (40)", "unexpected_message (10)"]
        .map(|alert| {
            format!(
                "the server asked to renegotiate, which nsh does not do, and sent fatal alert {alert}"
            )
        })
        .into_iter()
        .find(|named| {
            run.stdout.contains(&format!(
                "DTLS session with 127.0.0.1:{port} ended: {named}"
            ))
        })
        .unwrap_or_else(|| panic!("no line naming the alert:\n{}", run.stdout));
    let e = error_line(&run.stdout);
    let start = format!(
        "coap_get: could not send `GET /time` to 127.0.0.1:{port}: the DTLS server 127.0.0.1:{port} ended nsh's session at "
    );
    assert!(e.starts_with(&start), "{e}");
    assert!(
        e.contains(&format!(
            " s ago): {named}; `connect` again makes a new session"
        )),
        "{e}"
    );
}
