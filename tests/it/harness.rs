//! Helpers: the nsh binary, ports, real peers as child processes, and
//! running an nsh script while watching its output. Every process they
//! start is killed and reaped when its handle drops (a peer with all it
//! started in turn), also when a failed assertion unwinds the test, so none
//! is left holding the test's pipes, a port or a CPU.
//!
//! Ports are real, never picked by binding and releasing one: nsh listens
//! on port 0 (`listen(0)` in the script, `listen 0` on a command line) and
//! the test reads the bound port from its `listening on … port N` line
//! before it starts a peer.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub fn nsh_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nsh")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The port on nsh's `listening on UDP port N` line (printed by `listen`,
/// whatever the transport), if `text` has one.
pub fn listening_port(text: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let (_, rest) = line.split_once("listening on ")?;
        let (_, after) = rest.split_once(" port ")?;
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// A UDP socket bound on loopback that never answers, and its port: a
/// destination where nobody responds, held for as long as it lives.
pub fn silent_udp_port() -> (UdpSocket, u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}

/// The peers folder, checked to be installed.
pub fn peers_dir() -> PathBuf {
    let dir = repo().join("tests/peers");
    assert!(
        dir.join("node_modules").is_dir(),
        "the test peers are not installed: run `bash tests/setup.sh` first"
    );
    dir
}

/// A real client process, in a process group of its own with whatever it
/// starts (a Node.js driver's C client, a shell's children); on drop,
/// SIGTERM to it (so it de-registers), then SIGKILL to the whole group.
pub struct Peer {
    pub child: Child,
}

impl Peer {
    /// Starts `node tests/peers/<driver> 127.0.0.1 PORT EP`.
    pub fn node(driver: &str, port: u16, endpoint: &str, env: &[(&str, &str)]) -> Peer {
        let dir = peers_dir();
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(driver))
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(endpoint)
            .current_dir(&dir)
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Peer::spawn(cmd)
    }

    /// Starts `cmd` as a peer; its stdout lines (the driver's READY,
    /// EVENT …) go to the test's captured output.
    pub fn spawn(mut cmd: Command) -> Peer {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start the peer {cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[peer] {line}");
            }
        });
        Peer { child }
    }

    /// Asks the client to stop (it de-registers on SIGTERM).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Kills it and every process it started, at once (gone without a
    /// word, as a device that loses power), and reaps it.
    pub fn kill(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.child.id()).expect("a process ID"));
        // Its group outlives it while anything it started still runs.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.terminate();
        let end = Instant::now() + Duration::from_secs(4);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Also when it ended by itself: what it started may still run.
        self.kill();
    }
}

/// A child process killed and reaped when the test ends, however it ends
/// (a failed assertion unwinds through it): for processes started without
/// [`LiveNsh`] or [`Peer`].
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The outcome of an nsh run.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) {
        assert!(
            self.status.success(),
            "nsh failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `nsh ARGS…`, calling `on_line` for each stdout line as it comes (to
/// drive peers from markers the script prints). Kills nsh after `limit`.
pub fn run_nsh(args: &[&str], limit: Duration, mut on_line: impl FnMut(&str)) -> Run {
    let mut nsh = LiveNsh::spawn(args, false);
    let deadline = Instant::now() + limit;
    loop {
        match nsh.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                on_line(&line);
                nsh.seen.push_str(&line);
                nsh.seen.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    let _ = nsh.child.kill();
                    nsh.seen
                        .push_str("\n[killed: the test's time limit passed]\n");
                    break;
                }
            }
        }
    }
    let (status, stdout, stderr) = nsh.finish(limit.as_secs().max(1));
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Path of a test script.
pub fn script(name: &str) -> String {
    repo()
        .join("tests/scripts")
        .join(name)
        .display()
        .to_string()
}

/// Runs `nsh tests/scripts/SCRIPT ARGS…` with a real client. The script
/// listens on port 0 (`listen(0)`); the client starts, on the port nsh
/// printed, when the script prints `@@start-peer`, and is asked to stop (so
/// it de-registers) at `@@stop-peer`. The run must succeed and reach
/// `@@done`.
pub fn run_with_peer(
    driver: &str,
    endpoint: &str,
    env: &[(&str, &str)],
    script_name: &str,
    args: &[&str],
) -> Run {
    run_with_peer_flags(driver, endpoint, env, &[], script_name, args)
}

/// [`run_with_peer`] with extra nsh flags before the script (`--psk-identity …`).
pub fn run_with_peer_flags(
    driver: &str,
    endpoint: &str,
    env: &[(&str, &str)],
    flags: &[&str],
    script_name: &str,
    args: &[&str],
) -> Run {
    let script = script(script_name);
    let mut argv = flags.to_vec();
    argv.push(script.as_str());
    argv.extend_from_slice(args);
    let peer: std::cell::RefCell<Option<Peer>> = std::cell::RefCell::new(None);
    let mut port = None;
    let run = run_nsh(&argv, Duration::from_secs(120), |line| {
        if let Some(p) = listening_port(line) {
            port = Some(p);
        } else if line.contains("@@start-peer") {
            let port = port.expect("the script listens (`listen(0)`) before @@start-peer");
            *peer.borrow_mut() = Some(Peer::node(driver, port, endpoint, env));
        } else if line.contains("@@stop-peer")
            && let Some(p) = peer.borrow().as_ref()
        {
            p.terminate();
        }
    });
    drop(peer);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    run
}

/// Runs `nsh tests/scripts/SCRIPT ARGS…` with several real clients at
/// once: `peers[N]` (driver, endpoint) starts when the script prints
/// `@@start-peer-N` (again: a new process, on a new port), is asked to
/// stop at `@@stop-peer-N` and is killed at `@@kill-peer-N`. The run must
/// succeed and reach `@@done`.
pub fn run_with_peers(peers: &[(&str, &str)], script_name: &str, args: &[&str]) -> Run {
    let script = script(script_name);
    let mut argv = vec![script.as_str()];
    argv.extend_from_slice(args);
    let running: std::cell::RefCell<Vec<Option<Peer>>> =
        std::cell::RefCell::new(peers.iter().map(|_| None).collect());
    let mut port = None;
    let run = run_nsh(&argv, Duration::from_secs(120), |line| {
        if let Some(p) = listening_port(line) {
            port = Some(p);
            return;
        }
        for (n, (driver, endpoint)) in peers.iter().enumerate() {
            if line.contains(&format!("@@start-peer-{n}")) {
                let port = port.expect("the script listens (`listen(0)`) before @@start-peer");
                running.borrow_mut()[n] = Some(Peer::node(driver, port, endpoint, &[]));
            } else if line.contains(&format!("@@stop-peer-{n}"))
                && let Some(p) = running.borrow()[n].as_ref()
            {
                p.terminate();
            } else if line.contains(&format!("@@kill-peer-{n}"))
                && let Some(p) = running.borrow_mut()[n].as_mut()
            {
                p.kill();
            }
        }
    });
    drop(running);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    run
}

/// The port after the last ` port ` on a line (`listening on … port N`,
/// `Serving directory … on port N...`).
pub fn port_on(line: &str) -> Option<u16> {
    let (_, after) = line.rsplit_once(" port ")?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A running nsh whose stdout is read line by line as it comes, and whose
/// stdin, when piped, takes lines one at a time.
pub struct LiveNsh {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    seen: String,
    /// The port of its listening line (0 when not waited for).
    pub port: u16,
    stdin: Option<std::process::ChildStdin>,
}

impl LiveNsh {
    /// Starts `nsh ARGS…` and waits for the first line naming a port.
    pub fn start(args: &[&str]) -> LiveNsh {
        let mut nsh = Self::spawn(args, false);
        let line = nsh.wait_line(|l| port_on(l).is_some(), 10);
        nsh.port = port_on(&line).unwrap();
        assert_ne!(nsh.port, 0, "{line}");
        nsh
    }

    /// Starts `nsh ARGS…` reading its input from [`LiveNsh::send_line`]
    /// (the original's command-line form, line by line).
    pub fn piped(args: &[&str]) -> LiveNsh {
        Self::spawn(args, true)
    }

    fn spawn(args: &[&str], piped: bool) -> LiveNsh {
        let mut child = Command::new(nsh_bin())
            .args(args)
            .current_dir(repo())
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nsh");
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                s.push_str(&line);
                s.push('\n');
            }
            s
        });
        let stdin = child.stdin.take();
        LiveNsh {
            child,
            lines,
            stderr: Some(stderr),
            seen: String::new(),
            port: 0,
            stdin,
        }
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types one line into a [`LiveNsh::piped`] nsh.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("started with LiveNsh::piped");
        writeln!(stdin, "{line}").expect("write to nsh");
    }

    /// Closes a [`LiveNsh::piped`] nsh's input: it ends as at the end of a
    /// file of commands, once what it runs returns.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Everything it printed on stdout so far.
    pub fn seen(&self) -> &str {
        &self.seen
    }

    /// Waits up to `secs` for a stdout line that `pred` accepts.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line within {secs} s; nsh printed:\n{}", self.seen),
            }
        }
    }

    /// Waits for a line containing `needle`.
    pub fn wait(&mut self, needle: &str, secs: u64) -> String {
        self.wait_line(|l| l.contains(needle), secs)
    }

    /// Waits for the next `DTLS session with … established (…)` line.
    pub fn established(&mut self) -> String {
        self.wait_line(
            |l| l.contains("DTLS session with") && l.contains(" established ("),
            10,
        )
    }

    /// Waits for nsh to exit (killing it after `secs`): its status, all of
    /// stdout and all of stderr.
    pub fn finish(mut self, secs: u64) -> (ExitStatus, String, String) {
        let end = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for nsh") {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                break self.child.wait().expect("wait for nsh");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status, std::mem::take(&mut self.seen), stderr)
    }
}

/// Killed and reaped when dropped, also while a failed assertion unwinds
/// the test: an nsh left running (waiting for a client that never comes)
/// would hold the test's pipes open and `cargo test` with them.
impl Drop for LiveNsh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` exists (running, or ended and not yet reaped).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A test that fails while a piped nsh waits for a client (`listen 0` at
/// its prompt waits for the first one, whatever its input does) leaves no
/// nsh behind: the panic unwinds through the [`LiveNsh`], which kills and
/// reaps it.
#[test]
fn a_panic_in_a_test_leaves_no_nsh_running() {
    let (tx, pid) = mpsc::channel();
    let unwound = std::panic::catch_unwind(move || {
        let mut nsh = LiveNsh::piped(&[]);
        tx.send(nsh.pid()).unwrap();
        nsh.send_line("listen 0");
        nsh.wait("waiting for a client", 10);
        nsh.close_input();
        panic!("a failed assertion while nsh waits for a client");
    });
    assert!(unwound.is_err());
    let pid = pid.recv().unwrap();
    assert!(
        !process_exists(pid),
        "nsh (pid {pid}) still there after the test unwound"
    );
}

/// Whether process `pid` still runs (a zombie, ended and waiting to be
/// reaped by whoever adopted it, does not).
fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (comm) S …`: the state follows the last `)`.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// A peer that does not end on SIGTERM is killed when its handle drops,
/// and with it every process it started: a driver's C client (here a
/// `sleep`, started by a shell that ignores SIGTERM) does not outlive the
/// test, holding its port or a CPU.
#[test]
fn a_dropped_peer_leaves_no_process_it_started_running() {
    let pid_file = std::env::temp_dir().join(format!("nsh-peer-grandchild-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"trap '' TERM; sleep 300 & echo $! > "$1"; echo READY; wait"#)
        .arg("sh")
        .arg(&pid_file);
    let peer = Peer::spawn(cmd);
    let end = Instant::now() + Duration::from_secs(10);
    let grandchild: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < end, "the peer did not start its child");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&pid_file);
    assert!(process_runs(grandchild), "the peer's child did not start");
    drop(peer);
    let end = Instant::now() + Duration::from_secs(2);
    while process_runs(grandchild) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = process_runs(grandchild);
    if survived {
        // Not left behind by this test either.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(grandchild.to_string())
            .status();
    }
    assert!(
        !survived,
        "the peer's child (pid {grandchild}) outlived the peer"
    );
}
