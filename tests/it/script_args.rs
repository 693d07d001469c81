//! Script arguments at their edges, in-process (the shell's own entry,
//! [`Shell::eval_line`], over a real server on an ephemeral port): waits in
//! seconds that do not fit a `Duration`, and wrong values for them.
//!
//! A long wait is ended the way Ctrl-C ends it: a watchdog thread sets the
//! server's interrupt flag.

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use nsh::script::{LineResult, Shell};
use nsh::server::Server;

/// A shell whose server sends to `silent`, a UDP socket that never answers.
pub(crate) struct Bench {
    pub(crate) shell: Shell,
    /// Kept open, never read: requests to it go out and wait.
    _silent: UdpSocket,
}

impl Bench {
    pub(crate) fn new() -> Bench {
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind a silent peer");
        let mut shell = Shell::new(Server::new(), false, false);
        let port = silent.local_addr().expect("silent port").port();
        match shell.eval_line(&format!("connect 127.0.0.1 {port}")) {
            LineResult::Value(_) => {}
            other => panic!("connect: {other:?}"),
        }
        Bench {
            shell,
            _silent: silent,
        }
    }

    /// Evaluates `line` as typed at the prompt; from `after` on, the
    /// interrupt flag is set again and again (as Ctrl-C would) until the
    /// line returns.
    pub(crate) fn eval(&mut self, line: &str, after: Duration) -> LineResult {
        let flag = self.shell.ctx.server.interrupt_flag();
        let (done, wait) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                flag.store(true, Ordering::SeqCst);
            }
        });
        let result = self.shell.eval_line(line);
        let _ = done.send(());
        let _ = watchdog.join();
        result
    }
}

const SOON: Duration = Duration::from_millis(150);

fn interrupted(bench: &mut Bench, line: &str) {
    match bench.eval(line, SOON) {
        LineResult::Error(e) => assert!(e.contains("interrupted"), "{line}: {e}"),
        other => panic!("{line}: expected to wait until interrupted, got {other:?}"),
    }
}

fn fails_naming(bench: &mut Bench, line: &str, words: &[&str]) {
    match bench.eval(line, Duration::from_secs(5)) {
        LineResult::Error(e) => {
            for w in words {
                assert!(e.contains(w), "{line}: `{e}` does not name {w}");
            }
        }
        other => panic!("{line}: expected an error, got {other:?}"),
    }
}

fn returns(bench: &mut Bench, line: &str) {
    match bench.eval(line, Duration::from_secs(5)) {
        LineResult::Value(_) => {}
        other => panic!("{line}: expected a normal return, got {other:?}"),
    }
}

#[test]
fn waits_too_long_for_a_duration_wait_until_interrupted() {
    let mut b = Bench::new();
    for line in [
        "recv(1e20)",
        "recv inf",
        "wait_for(\"Notify\", 1e19)",
        "expect(\"Notify\", 1e300)",
        "sleep(1e300)",
        "read(\"/3/0\", #{timeout_s: 1e300})",
        "write(\"/1/0/1\", \"60\", #{timeout_s: 1e300})",
        "empty(\"CONFIRMABLE\", #{timeout_s: 1e300})",
    ] {
        interrupted(&mut b, line);
    }
}

#[test]
fn settings_in_seconds_too_large_for_a_duration_are_capped() {
    let mut b = Bench::new();
    returns(&mut b, "set timeout=1e300");
    returns(&mut b, "set(#{ack_timeout: 1e300})");
    returns(&mut b, "set");
    // The capped default timeout is what a request now waits.
    interrupted(&mut b, "read /3/0");
    returns(&mut b, "set timeout=inf ack_timeout=inf");
    interrupted(&mut b, "recv()");
}

#[test]
fn wrong_seconds_are_errors_naming_the_argument_and_the_value() {
    let mut b = Bench::new();
    for (line, words) in [
        ("recv(-1)", &["recv", "timeout_s", "-1"][..]),
        ("recv nan", &["recv", "timeout_s", "NaN"]),
        ("recv(0.0/0.0)", &["recv", "timeout_s", "NaN"]),
        ("sleep -inf", &["sleep", "timeout_s", "inf"]),
        ("sleep(\"soon\")", &["sleep", "timeout_s", "soon"]),
        (
            "wait_for(\"Notify\", -0.5)",
            &["wait_for", "timeout_s", "-0.5"],
        ),
        (
            "read(\"/3/0\", #{timeout_s: \"x\"})",
            &["read", "timeout_s", "x"],
        ),
        (
            "read(\"/3/0\", #{timeout_s: -1})",
            &["read", "timeout_s", "-1"],
        ),
        ("set timeout=-1", &["set", "timeout", "-1"]),
        ("set timeout=nan", &["set", "timeout", "NaN"]),
        ("set ack_timeout=0", &["set", "ack_timeout", "0"]),
        ("set ack_timeout=-inf", &["set", "ack_timeout", "inf"]),
        (
            "set(#{ack_timeout: \"long\"})",
            &["set", "ack_timeout", "long"],
        ),
    ] {
        fails_naming(&mut b, line, words);
    }
    // The shell is still usable, and the defaults were not changed.
    returns(&mut b, "set");
    match b.eval("recv(0)", Duration::from_secs(5)) {
        LineResult::Value(v) => assert!(v.is_unit(), "{v:?}"),
        other => panic!("recv(0): {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Every command with extreme and wrong arguments

use nsh::script::args::{Kind, Param};
use nsh::script::commands::{COMMANDS, Command};

/// Commands whose calls that bind the fixed port 5683 are left out, and
/// why: the call with no arguments and the one with `port: ()` (a unit
/// value is "not given", so the default port). Every other call of the
/// matrix runs for every command; these two get `port: 0` otherwise.
const FIXED_PORT: &[(&str, &str)] = &[
    (
        "listen",
        "binds the fixed port 5683, which other programs may use",
    ),
    (
        "file_server",
        "binds the fixed port 5683, which other programs may use",
    ),
];

/// Commands that create the file their `file` argument names, and why
/// their `file` gets no wrong values: each would become a file name in the
/// working directory (`-1`, `true`, `NaN`). They are called with a scratch
/// file instead, and with wrong values for every other parameter.
const CREATES_FILE: &[(&str, &str)] =
    &[("capture", "writes a pcapng file wherever its argument says")];

/// Extreme and wrong values, as Rhai expressions (`HUGE_TEXT`, `BLOB` and
/// `HUGE_ARRAY` are variables of the scope).
const WRONG: &[&str] = &[
    "1e300",
    "-1",
    "0.0/0.0",
    "9223372036854775807",
    "-9223372036854775807 - 1",
    "HUGE_TEXT",
    "\"\"",
    "BLOB",
    "true",
    "()",
    "[1, \"a\", #{}]",
    "HUGE_ARRAY",
    "#{}",
    "#{bogus: 1}",
    "|| 1",
    "\"\\x00\\xff[(#{\"",
];

/// The same for the command-line form.
const WRONG_WORDS: &[&str] = &[
    "1e300",
    "-1",
    "nan",
    "inf",
    "-inf",
    "''",
    "\\xff\\x00",
    "[",
    "a(",
    "x=",
    "x=y=z",
];

/// A value of the right type for a parameter.
fn plausible(p: &Param, file: &str) -> String {
    match p.name {
        "fname" => format!("{file:?}"),
        "file" => format!("{:?}", format!("{file}.pcapng")),
        "uri" => "\"coap://127.0.0.1:5683\"".into(),
        "endpoint_name" | "endpoint" => "\"ep\"".into(),
        _ => match p.kind {
            Kind::Str => "\"/3/0\"".into(),
            Kind::Int => "1".into(),
            Kind::Float => "0.001".into(),
            Kind::Bool => "false".into(),
            Kind::Bytes => "\"ab\"".into(),
            Kind::Format => "\"tlv\"".into(),
            Kind::Code => "\"2.05\"".into(),
            Kind::Type => "\"ACK\"".into(),
            Kind::List => "[\"/3/0\"]".into(),
            Kind::Options => "[]".into(),
            Kind::Any => "\"Notify\"".into(),
        },
    }
}

/// Named arguments every call gets unless the parameter under test is one
/// of them: no wait, no fixed port, no file server in the foreground.
fn calm(cmd: &Command, except: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in [("timeout_s", "0"), ("port", "0"), ("background", "true")] {
        if name != except && cmd.params.iter().any(|p| p.name == name) {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

fn call(cmd: &Command, positional: &[String], named: &[(String, String)]) -> String {
    let mut args: Vec<String> = positional.to_vec();
    if !named.is_empty() {
        let fields: Vec<String> = named.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
        args.push(format!("#{{{}}}", fields.join(", ")));
    }
    format!("{}({})", cmd.rhai_name(), args.join(", "))
}

/// Every call of the matrix for one command.
fn calls_of(cmd: &Command, file: &str) -> Vec<String> {
    let required: Vec<&Param> = cmd.params.iter().filter(|p| p.default.is_none()).collect();
    let good: Vec<String> = required.iter().map(|p| plausible(p, file)).collect();
    let mut calls = Vec::new();
    let fixed_port = FIXED_PORT.iter().any(|(n, _)| *n == cmd.name);
    if !fixed_port {
        calls.push(format!("{}()", cmd.rhai_name()));
    }
    calls.push(call(cmd, &good, &calm(cmd, "")));
    calls.push(call(cmd, &good, &[("bogus".into(), "1".into())]));
    let too_many: Vec<String> = (0..=cmd.params.len()).map(|_| "1".to_string()).collect();
    calls.push(call(cmd, &too_many, &[]));
    let creates_file = CREATES_FILE.iter().any(|(n, _)| *n == cmd.name);
    for p in cmd.params {
        if creates_file && p.name == "file" {
            continue;
        }
        for wrong in WRONG {
            if fixed_port && p.name == "port" && *wrong == "()" {
                continue;
            }
            let named = calm(cmd, p.name);
            if p.default.is_none() {
                let mut positional = good.clone();
                if let Some(i) = required.iter().position(|r| r.name == p.name) {
                    positional[i] = (*wrong).to_string();
                }
                calls.push(call(cmd, &positional, &named));
            } else {
                let mut named = named;
                named.push((p.name.to_string(), (*wrong).to_string()));
                calls.push(call(cmd, &good, &named));
            }
        }
    }
    // The command-line form, as typed at the prompt.
    for word in WRONG_WORDS.iter().filter(|_| !creates_file) {
        calls.push(format!("{} {word} {word}", cmd.name));
    }
    calls
}

/// The shell's settings and target, as the matrix expects them.
fn settle(b: &mut Bench, port: u16) {
    b.shell
        .ctx
        .exit
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for line in [
        "file_server_stop".to_string(),
        "set timeout=0.001 ack_timeout=2 retransmit=1 max_retransmit=4 history_limit=1000 faults=0"
            .to_string(),
        // The matrix's `listen … tcp=1` leaves a TCP socket: the silent
        // peer is a UDP one.
        format!("connect 127.0.0.1 {port} tcp=0"),
    ] {
        match b.shell.eval_line(&line) {
            LineResult::Value(_) => {}
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn every_command_survives_extreme_and_wrong_arguments() {
    let mut b = Bench::new();
    let port = b._silent.local_addr().expect("silent port").port();
    let dir = std::env::temp_dir().join(format!("nsh-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("small.bin");
    std::fs::write(&file, [7u8; 100]).expect("temp file");
    let file = file.display().to_string();
    b.shell.scope.push("HUGE_TEXT", "x".repeat(100_000));
    b.shell.scope.push(
        "BLOB",
        rhai::Blob::from_iter((0..=255u8).cycle().take(4096)),
    );
    b.shell.scope.push(
        "HUGE_ARRAY",
        (0..5_000i64)
            .map(rhai::Dynamic::from_int)
            .collect::<rhai::Array>(),
    );
    settle(&mut b, port);
    let started = std::time::Instant::now();
    let mut count = 0;
    for cmd in COMMANDS {
        // Commands that change the settings, the target or the socket.
        let unsettling = matches!(
            cmd.name,
            "set" | "connect" | "unconnect" | "listen" | "file_server" | "exit" | "use_client"
        );
        for line in calls_of(cmd, &file) {
            if unsettling {
                settle(&mut b, port);
            }
            count += 1;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                b.eval(&line, Duration::from_millis(30))
            }));
            match outcome {
                Err(_) => panic!("`{line}` panicked"),
                Ok(LineResult::Error(e)) => {
                    assert!(
                        !e.trim().is_empty()
                            && (e.contains(cmd.name)
                                || e.contains(cmd.rhai_name())
                                || e.contains("interrupted")),
                        "`{line}`: the error does not name the command: {e}"
                    );
                }
                Ok(LineResult::Value(_) | LineResult::Exit(_)) => {}
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{count} calls in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Exact comparison

#[test]
fn assert_eq_tells_64_bit_integers_apart() {
    let mut b = Bench::new();
    for (line, fails) in [
        ("assert_eq(9007199254740993, 9007199254740992)", true),
        ("assert_ne(9007199254740993, 9007199254740992)", false),
        ("assert_eq(9007199254740993, 9007199254740992.0)", true),
        (
            "assert_eq(9223372036854775807, 9223372036854775807.0)",
            true,
        ),
        ("assert_eq(3, 3.0)", false),
        ("assert_eq([9007199254740993], [9007199254740992])", true),
        ("assert_eq(0.5, 0.5)", false),
    ] {
        match (b.eval(line, Duration::from_secs(5)), fails) {
            (LineResult::Error(e), true) => assert!(e.contains("assert_eq failed"), "{line}: {e}"),
            (LineResult::Value(_), false) => {}
            (other, _) => panic!("{line}: {other:?}"),
        }
    }
}
