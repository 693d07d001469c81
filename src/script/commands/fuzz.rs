//! `fuzz`: sends the cases of [`crate::lwm2m::fuzz`] to the current client
//! and after each one checks that the device is alive — a read of `/3/0`
//! is answered and no new Register came from it. The same check runs once
//! before the first case: a device silent from the start is an error, not
//! a finding against case 0. On the first failure it
//! stops, prints the datagram that broke the device and a line of `udp`
//! calls that replays the case, and returns the finding.
//!
//! UDP and DTLS: over DTLS each case goes out as a record of the client's
//! session, as `udp` sends. Over TCP the framing differs, and `fuzz` says
//! so rather than send.
//!
//! The cases go out raw (`Server::send_raw`): their message IDs and tokens
//! come from the seed, so a run is reproducible; their answers are not
//! waited for (the liveness read, which goes through the exchange layer,
//! follows them on the same path, and a lock-step device answers in
//! order), and are taken out of the inbox afterwards. Messages are not
//! printed while it runs; a progress line is, when standard output is a
//! terminal.

use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};

use crate::coap::escaped;
use crate::lwm2m::fuzz::{Case, FuzzKind, Generator};
use crate::lwm2m::kind::Kind;
use crate::lwm2m::request::{self as rq, Build};
use crate::script::command::CmdResult;
use crate::script::ctx::Ctx;
use crate::script::send::{SET_TIMEOUT, err};
use crate::script::typed::command;
use crate::server::{Direction, Record, SendOptions, Server};

command! {
    /// `fuzz`.
    pub(super) const FUZZ = "fuzz";
    /// The arguments of `fuzz`.
    struct FuzzArgs {
        path: String = req(Str),
        count: Option<i64> = opt(Int, "100"),
        seed: Option<i64> = opt(Int, "1"),
        kinds: Option<Vec<String>> = opt(List, "all: options, token, payload-tlv, payload-cbor, payload-senml, payload-json, content-format, ids, block, observe"),
        timeout_s: Option<Duration> = opt(Float, SET_TIMEOUT),
    }
    help: "Sends COUNT malformed and boundary requests aimed at PATH to the current client, checking before the first case and after each that a read of /3/0 is answered and the client did not re-register (a device silent before the first case is an error). Stops at the first failure, prints the datagram and a replay line, and returns #{found, case_index, kind, what, reason, datagram, replay, cases_run, seed}; () when the device survived every case. Same SEED, same datagrams.",
    example: "let f = fuzz(\"/3/0\", #{count: 50, seed: 7, kinds: [\"payload-tlv\", \"ids\"]});",
    run: cmd_fuzz,
}

/// Why a case counts as having broken the device.
enum Broken {
    /// The liveness read got no answer (twice).
    Silent(String),
    /// A Register came from the device after the case.
    Reregistered(String),
}

impl Broken {
    fn reason(&self) -> &str {
        match self {
            Broken::Silent(s) | Broken::Reregistered(s) => s,
        }
    }

    /// With `note` added to the reason.
    fn noted(self, note: &str) -> Broken {
        match self {
            Broken::Silent(s) => Broken::Silent(s + note),
            Broken::Reregistered(s) => Broken::Reregistered(s + note),
        }
    }
}

fn cmd_fuzz(ctx: &Ctx, a: FuzzArgs) -> CmdResult {
    let count = a.count.unwrap_or(100);
    let count = u64::try_from(count).map_err(|_| format!("fuzz: `count`: {count} is negative"))?;
    let seed = a.seed.unwrap_or(1);
    let kinds = a
        .kinds
        .unwrap_or_default()
        .iter()
        .map(|k| FuzzKind::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("fuzz: `kinds`: {e}"))?;
    let generator =
        Generator::new(seed as u64, &kinds, &a.path).map_err(|e| format!("fuzz: `path`: {e}"))?;
    let server = &ctx.server;
    if server.is_tcp() {
        return Err("fuzz: the client is over TCP; fuzz sends UDP datagrams".into());
    }
    let peer = server
        .target()
        .ok_or("fuzz: no current client (wait for a Register, or `connect`)")?;
    let endpoint = server.current_client();
    let timeout = a.timeout_s.unwrap_or_else(|| server.default_timeout());

    let flags = server.flags();
    server.set_flags(crate::server::Flags {
        print_messages: false,
        ..flags
    });
    let outcome = run(ctx, &generator, count, peer, endpoint.as_deref(), timeout);
    server.set_flags(flags);
    let progress = std::io::stdout().is_terminal();
    if progress {
        print!("\r{:60}\r", "");
        let _ = std::io::stdout().flush();
    }
    let (ran, finding) = outcome?;
    let Some((case, broken)) = finding else {
        ctx.say(&format!(
            "fuzz: {ran} cases (seed {seed}), the device answered after each"
        ));
        return Ok(Dynamic::UNIT);
    };
    let last = case.datagrams.last().cloned().unwrap_or_default();
    let replay = replay_line(&case);
    ctx.say(&format!(
        "fuzz: case {} ({}: {}) broke the device: {}\ndatagram: {}\nreplay: {replay}",
        case.index,
        case.kind.name(),
        case.what,
        broken.reason(),
        escaped::format_hex(&last),
    ));
    let mut m = Map::new();
    m.insert("found".into(), Dynamic::TRUE);
    m.insert("case_index".into(), Dynamic::from(case.index as i64));
    m.insert("kind".into(), Dynamic::from(case.kind.name().to_string()));
    m.insert("what".into(), Dynamic::from(case.what.clone()));
    m.insert("reason".into(), Dynamic::from(broken.reason().to_string()));
    m.insert("datagram".into(), Dynamic::from(hex::encode(&last)));
    m.insert(
        "datagrams".into(),
        Dynamic::from_array(
            case.datagrams
                .iter()
                .map(|d| Dynamic::from(hex::encode(d)))
                .collect(),
        ),
    );
    m.insert("replay".into(), Dynamic::from(replay));
    m.insert("cases_run".into(), Dynamic::from(ran as i64));
    m.insert("seed".into(), Dynamic::from(seed));
    Ok(Dynamic::from_map(m))
}

/// Runs up to `count` cases; the number run and the first that broke the
/// device.
fn run(
    ctx: &Ctx,
    generator: &Generator,
    count: u64,
    peer: SocketAddr,
    endpoint: Option<&str>,
    timeout: Duration,
) -> Result<(u64, Option<(Case, Broken)>), String> {
    let server = &ctx.server;
    let progress = std::io::stdout().is_terminal();
    let mut shown = Instant::now();
    let start = server.history_mark();
    // What nsh itself does to the datagrams may be why the device looks
    // broken: said with every finding.
    let faults = server.faults();
    let spec = faults.spec_for(peer);
    let note = if spec.is_off() {
        String::new()
    } else {
        format!(
            "; fault injection is on for this device ({spec}): the reads may have been lost to it"
        )
    };
    let check = |mark| check_alive(server, peer, endpoint, mark, timeout).map(|b| b.noted(&note));
    // A device that does not answer now would make case 0 look guilty.
    if let Some(b) = check(start) {
        drain_answers(server, peer, start);
        return Err(format!(
            "fuzz: before any case, {}; no case was sent (fuzz needs a device that answers a read of /3/0)",
            b.reason()
        ));
    }
    for i in 0..count {
        if server
            .interrupt_flag()
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(format!("fuzz: interrupted after {i} cases"));
        }
        let case = generator.case(i);
        if progress && (i == 0 || shown.elapsed() >= Duration::from_millis(100)) {
            shown = Instant::now();
            print!(
                "\rfuzz: case {}/{count} ({})        ",
                i + 1,
                case.kind.name()
            );
            let _ = std::io::stdout().flush();
        }
        let mark = server.history_mark();
        for d in &case.datagrams {
            server
                .send_raw(d)
                .map_err(|e| format!("fuzz: case {i}: {e}"))?;
        }
        let broken = check(mark);
        drain_answers(server, peer, start);
        if let Some(b) = broken {
            return Ok((i + 1, Some((case, b))));
        }
    }
    Ok((count, None))
}

/// Whether the device is alive: a read of `/3/0` is answered (a second
/// one is tried before giving up, in case the first collided with a
/// message ID of the case) and no Register came from it since `mark`.
fn check_alive(
    server: &Server,
    peer: SocketAddr,
    endpoint: Option<&str>,
    mark: u64,
    timeout: Duration,
) -> Option<Broken> {
    let mut answered = false;
    let mut last_error = String::new();
    for _ in 0..2 {
        match read_device(server, peer, timeout) {
            Ok(()) => {
                answered = true;
                break;
            }
            Err(e) => last_error = e,
        }
    }
    if let Some(r) = reregistration(server, peer, endpoint, mark) {
        return Some(Broken::Reregistered(format!(
            "it registered again ({})",
            r.summary()
        )));
    }
    (!answered).then(|| {
        Broken::Silent(format!(
            "a read of /3/0 went unanswered twice ({last_error})"
        ))
    })
}

fn read_device(server: &Server, peer: SocketAddr, timeout: Duration) -> Result<(), String> {
    let read = rq::Read {
        path: "/3/0".into(),
        accept: None,
        header: rq::Header::default(),
    };
    let built = read.build().map_err(err)?;
    let opts = SendOptions {
        fill_message_id: built.needs_msg_id,
        fill_token: built.needs_token,
        wait: Some(timeout),
    };
    server
        .send_to(peer, built.message, opts)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A Register received since `mark` from `peer` or for `endpoint`, still
/// in the inbox.
fn reregistration(
    server: &Server,
    peer: SocketAddr,
    endpoint: Option<&str>,
    mark: u64,
) -> Option<std::sync::Arc<Record>> {
    // Every Register goes to the inbox (answered or not), which is short
    // next to the history.
    server.pending().into_iter().rev().find(|r| {
        r.seq >= mark
            && r.direction == Direction::Received
            && r.kind == Some(Kind::Register)
            && (r.peer == peer
                || r.message.as_ref().is_ok_and(|m| {
                    endpoint.is_some_and(|ep| {
                        m.uri_query()
                            .iter()
                            .any(|q| q.strip_prefix("ep=") == Some(ep))
                    })
                }))
    })
}

/// Takes the device's answers to the cases since `mark` (responses,
/// notifications of the observations a storm left, empty and malformed
/// datagrams) out of the inbox; its requests stay.
fn drain_answers(server: &Server, peer: SocketAddr, mark: u64) {
    let answer = |r: &Record| {
        r.seq >= mark && r.peer == peer && r.message.as_ref().map_or(true, |m| !m.code.is_request())
    };
    while let Ok(Ok(_)) = server.wait_inbox(Duration::ZERO, answer) {}
}

/// One Rhai line that sends the case's datagrams again, exactly
/// (`udp(`\x40\x01…`);` each, in a literal string).
pub(crate) fn replay_line(case: &Case) -> String {
    case.datagrams
        .iter()
        .map(|d| {
            let text: String = d.iter().map(|b| format!("\\x{b:02x}")).collect();
            format!("udp(`{text}`);")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
