//! The device under test as a child process (`nsh test --client 'COMMAND'`):
//! started through `sh -c` in its own process group with `{port}`, `{uri}`
//! and `{endpoint}` substituted, its stdin held open (many clients quit on
//! EOF), its output kept for the report, and stopped with SIGTERM to the
//! whole group, then SIGKILL after a grace period (at once on a second
//! signal to nsh).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a client command is started with.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The command as given, before substitution.
    pub template: String,
    /// nsh's port for this script.
    pub port: u16,
    /// `coap://127.0.0.1:PORT`.
    pub uri: String,
    /// The endpoint name, unique per script.
    pub endpoint: String,
}

impl Launch {
    /// The command with `{port}`, `{uri}` and `{endpoint}` filled in.
    pub fn command(&self) -> String {
        self.template
            .replace("{port}", &self.port.to_string())
            .replace("{uri}", &self.uri)
            .replace("{endpoint}", &self.endpoint)
    }

    /// Whether the command names the endpoint (then only its Register
    /// counts as the client's).
    pub fn names_endpoint(&self) -> bool {
        self.template.contains("{endpoint}")
    }
}

/// How long the client's output is read after its process group was
/// killed (for what is still in the pipes).
const OUTPUT_WAIT: Duration = Duration::from_secs(1);

/// A running client.
pub struct Client {
    child: Child,
    /// Held open until the client is stopped.
    stdin: Option<ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
    /// Each reads one pipe to its end; not joined, so a process holding a
    /// pipe open cannot hold nsh.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Starts `sh -c COMMAND` in a new process group.
    pub fn start(command: &str) -> std::io::Result<Client> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for mut stream in streams {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            }));
        }
        Ok(Client {
            stdin: child.stdin.take(),
            child,
            output,
            readers,
        })
    }

    /// The process id (also the process group's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status text)` once the process has ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Stops the client: SIGTERM to its process group, SIGKILL to the group
    /// after `grace` (or at once once the first process ended, for any
    /// process it left behind, or once `cut_short` says so: a second
    /// signal to nsh). Returns what it printed.
    pub fn stop(mut self, grace: Duration, cut_short: &dyn Fn() -> bool) -> String {
        self.stdin = None;
        let group = format!("-{}", self.child.id());
        signal("TERM", &group);
        let end = Instant::now() + grace;
        while Instant::now() < end && !cut_short() {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("KILL", &group);
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The group is gone; a process it started outside the group (a
        // daemon, `setsid`) may still hold the pipes: not waited for.
        let end = Instant::now() + OUTPUT_WAIT;
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let held = self.readers.iter().any(|r| !r.is_finished());
        let mut text = {
            let out = self.output.lock().unwrap_or_else(|p| p.into_inner());
            String::from_utf8_lossy(&out).into_owned()
        };
        if held {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("[nsh: the client's output is cut here: a process it started outside its process group still holds it open]\n");
        }
        text
    }
}

/// `kill -SIG -- TARGET`, quietly (the group may be gone already).
fn signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
