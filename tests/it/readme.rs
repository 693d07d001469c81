//! The README's first command, run as a user would on this machine: it
//! installs the build packages only when they are missing (here they are
//! present, so that step says so and changes nothing), builds nsh and opens
//! the shell listening on the default port. The test reads until the
//! listening line and then stops the whole process group.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::repo;

/// The first line of the README's first `sh` block, without its comment.
fn first_command() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .expect("the README starts with a ```sh block");
    let line = block.lines().next().expect("a first command");
    line.split(" #").next().unwrap_or(line).trim().to_string()
}

#[test]
fn the_readmes_first_command_opens_a_listening_shell() {
    let command = first_command();
    assert!(
        command.contains("install-build-deps.sh") && command.contains("cargo run"),
        "the first command installs the build packages and runs nsh: {command}"
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .current_dir(repo())
        // A shell's stdin stays open (nsh reads commands from it).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    // The build may take minutes on a machine that has not built nsh yet.
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut seen = Vec::new();
    let mut listening = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                // `-l` at a prompt waits for the first client on the port.
                listening |= line.contains("waiting for a client on port 5683")
                    || line.contains("listening on UDP port 5683");
                let refused = line.contains("could not listen");
                seen.push(line);
                if listening || refused {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    seen.push(format!("[exited: {status}]"));
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // The whole group (bash, cargo, nsh): `--` so that the negative
    // number names the group, not a signal.
    let _ = Command::new("kill")
        .args(["-s", "TERM", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
    assert!(listening, "no listening line:\n{}", seen.join("\n"));
    assert!(
        seen.iter().any(|l| l.contains("packages: present")),
        "the install step was skipped (packages present):\n{}",
        seen.join("\n")
    );
}
