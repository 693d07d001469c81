//! Storms: 10,000 LwM2M clients, each on its own UDP socket, register within
//! about two seconds without ever retransmitting; every one must get its
//! 2.01 Created and appear in `clients()`, and again when the whole fleet
//! registers a second time under the same names (a reboot after an
//! outage). And thousands of idle TCP connections served without a thread
//! each.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use nsh::coap::{CoapOption, Code, Message, OptionNumber, Type, udp};

use crate::harness::LiveNsh;

/// Raises the soft limit on open files to `want` (or the hard limit).
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Client `i`'s Register in `wave` (0, then 1 for the fleet registering
/// again): a message ID and a token of that wave's, so the second is not
/// taken for a duplicate of the first.
fn register(i: usize, wave: u8) -> Vec<u8> {
    let mid = (i + usize::from(wave) * 2 * CLIENTS) % 65536;
    let mut m = Message::new(Type::Confirmable, Code::POST, mid as u16);
    m.token = token(i, wave);
    m.set_uri(&format!("/rd?ep=storm-{i}&lt=600&lwm2m=1.1&b=U"));
    m.add_option(CoapOption::uint(OptionNumber::CONTENT_FORMAT, 40));
    m.payload = b"</1/0>,</3/0>".to_vec();
    udp::encode(&m)
}

fn token(i: usize, wave: u8) -> Vec<u8> {
    let mut t = (i as u32).to_be_bytes().to_vec();
    t.push(wave);
    t
}

/// A script that waits until `n` clients are registered, then prints how
/// many it sees and what `use_client` on the last one gave.
fn waiting_script(n: usize) -> String {
    format!(
        r#"let n = 0;
for i in 0..1200 {{ n = clients().len(); if n >= {n} {{ break; }} sleep(0.05); }}
print("@@clients " + n);
let c = use_client("storm-{last}");
print("@@current " + c.endpoint);
sleep(1.5);
print("@@history " + history(30000).filter(|m| m.kind == "Register").len());"#,
        last = n - 1
    )
}

const CLIENTS: usize = 10_000;

#[test]
fn ten_thousand_clients_registering_within_two_seconds_are_all_answered() {
    storm(&waiting_script(CLIENTS));
}

/// The same storm while a command waits for a message that never comes:
/// the waiting command reads the socket itself (the reader stands aside),
/// and must keep up as the reader does.
#[test]
fn ten_thousand_clients_are_all_answered_while_a_command_waits() {
    let script = format!(
        r#"print("@@waiting");
try {{ wait_for("Update", 4.0); }} catch (e) {{ print("@@waited " + e.len()); }}
{}"#,
        waiting_script(CLIENTS)
    );
    storm(&script);
}

/// The fleet registers, then registers again under the same names: each
/// second Register replaces a registration (nsh once rebuilt its whole
/// table for each, and answered a few hundred a second).
#[test]
fn ten_thousand_clients_registering_again_are_all_answered() {
    let _alone = ONE_STORM.lock().unwrap_or_else(|p| p.into_inner());
    raise_fd_limit(CLIENTS as u64 + 1024);
    let script = format!(
        r#"let n = 0;
for i in 0..1200 {{ n = clients().len(); if n >= {CLIENTS} {{ break; }} sleep(0.05); }}
print("@@first " + n);
let registers = 0;
for i in 0..240 {{
    registers = history(100000).filter(|m| m.kind == "Register").len();
    if registers >= {twice} {{ break; }}
    sleep(0.5);
}}
print("@@again " + clients().len() + " " + registers + " " + use_client("storm-0").location);"#,
        twice = 2 * CLIENTS
    );
    let mut nsh = LiveNsh::start(&["-l", "0", "-c", &script]);
    let sockets = sockets();
    let first = send_wave(&sockets, nsh.port, 0);
    assert_eq!(first.left, 0, "first wave: {first:?}");
    assert_eq!(nsh.wait("@@first", 90), format!("@@first {CLIENTS}"));
    let again = send_wave(&sockets, nsh.port, 1);
    let line = nsh.wait("@@again", 90);
    let (status, out, err) = nsh.finish(30);
    assert!(
        again.sent_in < Duration::from_secs(5),
        "sending took {:?}; the storm was not one",
        again.sent_in
    );
    assert_eq!(
        again.left, 0,
        "{} of {CLIENTS} clients registering again got no 2.01 Created; {again:?}\n{err}",
        again.left
    );
    // Still one registration per endpoint, each under a new location.
    assert_eq!(
        line,
        format!("@@again {CLIENTS} {} /rd/{}", 2 * CLIENTS, CLIENTS + 1),
        "{err}"
    );
    assert!(status.success(), "{err}\n{}", tail(&out));
}

/// One socket per client, non-blocking.
fn sockets() -> Vec<UdpSocket> {
    (0..CLIENTS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// How a wave of Registers went.
#[derive(Debug)]
struct Wave {
    /// Clients that got no 2.01 Created within a minute.
    left: usize,
    first_unanswered: Option<usize>,
    sent_in: Duration,
}

/// Every client sends its Register of `wave`: ten bursts of a thousand,
/// 200 ms apart, about two seconds in all; then the answers are collected
/// for up to a minute (each must be 2.01 with the client's token).
fn send_wave(sockets: &[UdpSocket], port: u16, wave: u8) -> Wave {
    let started = Instant::now();
    for (i, s) in sockets.iter().enumerate() {
        if i % 1000 == 0 && i > 0 {
            let due = started + Duration::from_millis(200 * (i / 1000) as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        s.send_to(&register(i, wave), ("127.0.0.1", port)).unwrap();
    }
    let sent_in = started.elapsed();
    let mut answered = vec![false; sockets.len()];
    let mut left = sockets.len();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 && Instant::now() < deadline {
        let before = left;
        for (i, s) in sockets.iter().enumerate() {
            if answered[i] {
                continue;
            }
            if let Ok(n) = s.recv(&mut buf) {
                let m = udp::decode(&buf[..n]).unwrap();
                assert_eq!(m.code, Code::CREATED, "client {i}: {m:?}");
                assert_eq!(m.token, token(i, wave), "client {i}");
                answered[i] = true;
                left -= 1;
            }
        }
        if left == before {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Wave {
        left,
        first_unanswered: answered.iter().position(|a| !a),
        sent_in,
    }
}

/// One storm at a time: each holds 10,000 sockets open.
static ONE_STORM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn storm(script: &str) {
    let _alone = ONE_STORM.lock().unwrap_or_else(|p| p.into_inner());
    raise_fd_limit(CLIENTS as u64 + 1024);
    let mut nsh = LiveNsh::start(&["-l", "0", "-c", script]);
    if script.contains("@@waiting") {
        nsh.wait("@@waiting", 30);
    }
    let sockets = sockets();
    let Wave {
        left,
        first_unanswered,
        sent_in,
    } = send_wave(&sockets, nsh.port, 0);
    let count = nsh.wait("@@clients", 90);
    let current = nsh.wait("@@current", 30);
    let history = nsh.wait("@@history", 60);
    let (status, out, err) = nsh.finish(30);
    assert!(
        sent_in < Duration::from_secs(5),
        "sending took {sent_in:?}; the storm was not one"
    );
    assert_eq!(
        left, 0,
        "{left} of {CLIENTS} clients got no 2.01 Created; first: {first_unanswered:?}\n{err}"
    );
    assert_eq!(count, format!("@@clients {CLIENTS}"), "{err}");
    assert_eq!(current, format!("@@current storm-{}", CLIENTS - 1));
    // A few lines are shown, the rest summed up; the history keeps all.
    assert_eq!(history, format!("@@history {CLIENTS}"));
    let (shown, summed) = printed("<- Register", &out);
    assert!(shown < 200, "{shown} Register lines printed");
    assert_eq!(shown + summed, CLIENTS, "{}", tail(&out));
    assert!(status.success(), "{err}\n{}", tail(&out));
}

/// How many lines of `kind` were printed, and how many the summaries
/// (`… and 9,990 more `<- Register` lines …`) say were not.
fn printed(kind: &str, out: &str) -> (usize, usize) {
    let shown = out.lines().filter(|l| l.starts_with(kind)).count();
    let marker = format!(" more `{kind}` lines");
    let summed = out
        .lines()
        .filter_map(|l| l.strip_prefix("… and ")?.split_once(&marker))
        .map(|(n, _)| n.replace(',', "").parse::<usize>().unwrap())
        .sum();
    (shown, summed)
}

fn tail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
