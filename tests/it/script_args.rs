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
