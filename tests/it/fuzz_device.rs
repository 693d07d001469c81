//! `fuzz` against a lock-step client with a planted defect
//! (tests/peers/lockstep_client.py: a TLV whose first length runs past the
//! payload makes it exit with status 3, or register again), and against
//! wakatiwai; `scripts/soak.rhai` against wakatiwai.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Run, listening_port, peers_dir, repo, run_nsh, run_with_peer, script};

/// The lock-step client, killed on drop.
struct Lockstep {
    child: Child,
}

impl Lockstep {
    fn start(port: u16, endpoint: &str, defect: &str) -> Lockstep {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/lockstep_client.py"))
            .args(["127.0.0.1", &port.to_string(), endpoint, "--defect", defect])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3");
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[lockstep] {line}");
            }
        });
        Lockstep { child }
    }

    /// Its exit status once it ended, waiting up to `secs`.
    fn exit_code(&mut self, secs: u64) -> Option<i32> {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Lockstep {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an nsh script that prints `@@start-peer` once it listens; the
/// lock-step client starts then. Returns the run and the client.
fn with_lockstep(args: &[&str], defect: &str) -> (Run, Lockstep) {
    let mut port = None;
    let mut client = None;
    let run = run_nsh(args, Duration::from_secs(120), |line| {
        if let Some(p) = listening_port(line) {
            port = Some(p);
        } else if line.contains("@@start-peer") {
            let p = port.expect("the script listens before @@start-peer");
            client = Some(Lockstep::start(p, "fuzz-ep", defect));
        }
    });
    (run, client.expect("the script printed @@start-peer"))
}

/// The text after `@@NAME ` in the output.
fn marker<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    let tag = format!("@@{name} ");
    out.lines().find_map(|l| l.strip_prefix(tag.as_str()))
}

fn fuzz(seed: &str, count: &str, kinds: &str, defect: &str) -> (Run, Lockstep) {
    let s = script("fuzz_device.rhai");
    let (run, client) = with_lockstep(&[&s, seed, count, kinds], defect);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    (run, client)
}

const ALL: &str = "options,token,payload-tlv,payload-cbor,payload-senml,payload-json,content-format,ids,block,observe";

#[test]
fn fuzz_finds_the_crash_planted_in_a_lockstep_client_and_its_replay_line_reproduces_it() {
    let (run, mut client) = fuzz("11", "300", ALL, "crash");
    assert_eq!(client.exit_code(5), Some(3), "{}", run.stdout);
    let out = &run.stdout;
    assert!(
        out.contains("broke the device: a read of /3/0 went unanswered"),
        "{out}"
    );
    let kind = marker(out, "kind").expect("a finding");
    assert!(
        ["payload-tlv", "content-format"].contains(&kind),
        "a TLV case found it: {kind}\n{out}"
    );
    let replay = marker(out, "replay").expect("a replay line");
    assert!(replay.starts_with("udp(`"), "{replay}");
    let datagram = marker(out, "datagram").expect("the datagram");
    assert!(
        out.contains(&format!("datagram: {}", escaped(datagram))),
        "{out}"
    );

    // The replay line alone, from a fresh nsh to a fresh client, kills it.
    let dir = std::env::temp_dir().join(format!("nsh-fuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("replay.rhai");
    std::fs::write(
        &file,
        format!(
            "listen(0);\nprint(\"@@start-peer\");\nwait_for(\"Register\", 30);\n{replay}\nprint(\"@@done\");\n"
        ),
    )
    .unwrap();
    let (again, mut fresh) = with_lockstep(&[file.to_str().unwrap()], "crash");
    again.assert_ok();
    assert_eq!(fresh.exit_code(10), Some(3), "{}", again.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

fn escaped(hex: &str) -> String {
    (0..hex.len() / 2)
        .map(|i| format!("\\x{}", &hex[2 * i..2 * i + 2]))
        .collect()
}

#[test]
fn the_same_seed_finds_the_same_case_with_the_same_datagram() {
    let (a, _) = fuzz("5", "200", ALL, "crash");
    let (b, _) = fuzz("5", "200", ALL, "crash");
    let pick = |r: &Run| {
        (
            marker(&r.stdout, "case_index").map(str::to_string),
            marker(&r.stdout, "datagram").map(str::to_string),
        )
    };
    let (case, datagram) = pick(&a);
    assert!(case.is_some() && datagram.is_some(), "{}", a.stdout);
    assert_eq!(pick(&b), (case, datagram));
}

#[test]
fn fuzz_reports_a_client_that_registers_again() {
    let (run, mut client) = fuzz("3", "300", "payload-tlv", "reboot");
    assert!(
        run.stdout
            .contains("broke the device: it registered again (Register /rd?ep=fuzz-ep"),
        "{}",
        run.stdout
    );
    assert_eq!(client.exit_code(0), None, "the client is still running");
}

#[test]
fn a_client_without_the_defect_survives_every_kind() {
    let (run, mut client) = fuzz("9", "400", ALL, "none");
    assert!(run.stdout.contains("@@none"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("fuzz: 400 cases (seed 9), the device answered after each"),
        "{}",
        run.stdout
    );
    assert_eq!(client.exit_code(0), None, "the client is still running");
}

#[test]
fn fuzz_rejects_an_unknown_kind_a_bad_path_tcp_and_no_client() {
    let run = run_nsh(
        &["-c", "fuzz(\"/3/0\", #{kinds: [\"tlv\"]})"],
        Duration::from_secs(20),
        |_| {},
    );
    assert!(!run.status.success());
    assert!(
        run.stderr
            .contains("unknown fuzz kind `tlv` (kinds: options, token, payload-tlv"),
        "{}",
        run.stderr
    );
    let run = run_nsh(&["-c", "fuzz(\"/3/x\")"], Duration::from_secs(20), |_| {});
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("`/3/x` is not an LwM2M path"),
        "{}",
        run.stderr
    );
}

#[test]
fn wakatiwai_survives_a_fuzz_run_of_every_kind() {
    let _ = peers_dir();
    let run = run_with_peer(
        "waka.js",
        "waka-fuzz",
        &[],
        "fuzz_device.rhai",
        &["2", "150", ALL],
    );
    assert!(run.stdout.contains("@@none"), "{}", run.stdout);
}

#[test]
fn soak_script_runs_against_two_wakatiwai_clients_with_flat_descriptors_and_a_bounded_history() {
    let script = repo().join("scripts/soak.rhai").display().to_string();
    // 20 s of operations, 2 clients, a history of 300 records (reached
    // within the run, so its bound is exercised).
    let argv = [
        "-l",
        "0",
        script.as_str(),
        "20",
        "2",
        "/3303/0/5750",
        "/3303/0/5700",
        "300",
    ];
    let mut peers = Vec::new();
    let run = run_nsh(&argv, Duration::from_secs(120), |line| {
        if let (true, Some(port)) = (peers.is_empty(), listening_port(line)) {
            for ep in ["soak-a", "soak-b"] {
                let (sock, cport) = crate::harness::silent_udp_port();
                drop(sock);
                let cport = cport.to_string();
                peers.push(crate::harness::Peer::node(
                    "waka.js",
                    port,
                    ep,
                    &[("TEMP_MS", "200"), ("CPORT", cport.as_str())],
                ));
            }
        }
    });
    drop(peers);
    run.assert_ok();
    let out = &run.stdout;
    assert!(out.contains("soak: ok"), "{out}");
    let samples: Vec<&str> = out.lines().filter(|l| l.contains(" rss_kb=")).collect();
    assert!(samples.len() >= 5, "{out}");
    let last = samples.last().unwrap();
    assert!(last.contains("history=300/300"), "{out}");
}

#[test]
fn fuzz_shows_a_progress_line_on_a_terminal_only() {
    // On a pseudo-terminal: one line rewritten with \r.
    let mut cmd = Command::new(crate::harness::nsh_bin());
    cmd.args([script("fuzz_device.rhai").as_str(), "4", "300", ALL]);
    cmd.env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).expect("spawn nsh in a pty");
    let (_, port) = p
        .exp_regex(r"listening on UDP port \d+")
        .expect("listening line");
    let port: u16 = port.rsplit(' ').next().unwrap().parse().unwrap();
    p.exp_string("@@start-peer").expect("@@start-peer");
    let _client = Lockstep::start(port, "fuzz-ep", "none");
    let before = p.exp_string("@@done").expect("@@done");
    assert!(before.contains("\rfuzz: case 1/300 ("), "{before:?}");
    assert!(before.contains("fuzz: 300 cases (seed 4)"), "{before:?}");
    // Piped: none.
    let (run, _client) = fuzz("4", "30", ALL, "none");
    assert!(!run.stdout.contains("fuzz: case 1/"), "{}", run.stdout);
}

/// `fuzz` (5 cases, 0.3 s reads) toward a socket nobody reads, after
/// `settings` (Rhai); it must fail. The run and the socket, with what
/// reached it still unread.
fn fuzz_a_silent_device(settings: &str) -> (Run, std::net::UdpSocket) {
    let (silent, port) = crate::harness::silent_udp_port();
    let code = format!(
        "listen(0); connect(\"127.0.0.1\", {port}); {settings} fuzz(\"/3/0\", #{{count: 5, timeout_s: 0.3}})"
    );
    let run = run_nsh(&["-c", &code], Duration::from_secs(30), |_| {});
    assert!(!run.status.success(), "{}", run.stdout);
    (run, silent)
}

#[test]
fn fuzz_blames_no_case_when_the_device_is_silent_before_the_first() {
    // A device that answers nothing at all (here: a socket nobody reads)
    // was not broken by case 0: fuzz says so and sends no case.
    let (run, silent) = fuzz_a_silent_device("");
    assert!(!run.stdout.contains("broke the device"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("fuzz: before any case, a read of /3/0 went unanswered twice"),
        "{}",
        run.stderr
    );
    // Only the two reads went out, no case.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1500];
    let mut got = Vec::new();
    while let Ok((n, _)) = silent.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert!(!got.is_empty(), "the reads reached the socket");
    assert!(
        got.iter().all(|d| d.len() >= 2 && d[1] == 0x01),
        "only GETs: {got:?}"
    );
}

#[test]
fn with_faults_injected_for_the_device_fuzz_says_they_may_be_why() {
    // A read lost to nsh's own loss injection is not the device's fault:
    // the error says the injection is on.
    let (run, _silent) = fuzz_a_silent_device("set(#{loss: 0.5, seed: 1});");
    assert!(
        run.stderr.contains(
            "fault injection is on for this device (loss=0.5 dup=0 delay_ms=0 reorder=0 direction=both): the reads may have been lost to it"
        ),
        "{}",
        run.stderr
    );
}

/// Over DTLS the cases go out as records of the client's session
/// (wakatiwai with a PSK): the device parses them and answers some.
#[test]
fn wakatiwai_over_dtls_gets_fuzz_cases_inside_its_session() {
    let _ = peers_dir();
    let run = crate::harness::run_with_peer_flags(
        "waka.js",
        "waka-fuzz-dtls",
        &[("PSK_ID", "user"), ("PSK_KEY_HEX", "70617373776f7264")],
        &["--psk-identity", "user", "--psk-key", "password"],
        "fuzz_dtls.rhai",
        &["5", "40"],
    );
    assert!(run.stdout.contains("@@answered "), "{}", run.stdout);
}
