//! `nsh test [PATHS…]`: runs every `*.rhai` under the paths (bar the
//! libraries found in directories: files of functions only), each in a
//! fresh [`Shell`] over a new [`Server`] listening on its own port (port 0,
//! so scripts can run in parallel with `--jobs`), optionally with the device
//! started for it (`--client`, see [`client`]). Prints one line per
//! `test(…)` case and per script, then `N passed, N failed, N skipped`;
//! writes a JUnit report with one testsuite per script, named by the
//! script's path under the directory given (`x/read`).
//!
//! A `--timeout`, a signal (SIGINT, SIGTERM, SIGHUP: exit 128 + N) or the
//! exit of the client interrupts the script's waits through the server's
//! [`Interruption`], which the case running fails with; the cases written
//! after it are listed as not run, with the reason (as after `exit(0)`, an
//! error or `skip` outside the cases). Each script is compiled before its
//! client is started.
//!
//! Sits above `script`: `main ─> runner ─> script`.

pub mod client;
pub mod ets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};

use crate::report;
use crate::script::message::{Msg, View};
use crate::script::{RunError, Shell, SuiteMode, TestOutcome, case_line, junit, unread_note};
use crate::server::{Interruption, Server};
use crate::transport::Security;
use crate::transport::dtls::settings::SecurityArgs;

/// `nsh test`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    /// Scripts, or directories searched (recursively) for *.rhai
    #[arg(value_name = "PATHS", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Run only the scripts whose path, and the cases whose name, contain
    /// TEXT (every case of a script whose path matches)
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,

    /// List the scripts and their test(…) cases without running them
    #[arg(long)]
    pub list: bool,

    /// Start no script after one failed (the others are reported as not
    /// run)
    #[arg(long)]
    pub fail_fast: bool,

    /// Stop a script (failed) after S seconds (more than 0; leave it out for
    /// no limit): the case running fails, the later ones are listed as not
    /// run
    #[arg(long, value_name = "S")]
    pub timeout: Option<f64>,

    /// Run N scripts at once, each with its own port and client
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,

    /// Start the device for each script: a shell command with {port},
    /// {uri} (coap://127.0.0.1:PORT; coaps://, coap+tcp:// or coaps+tcp://
    /// with the security options) and {endpoint} (unique per script)
    /// substituted; the script starts once it registered
    #[arg(long, value_name = "COMMAND")]
    pub client: Option<String>,

    /// How long to wait for --client's registration (more than 0)
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub register_timeout: f64,

    /// How long a stopped client has between SIGTERM and SIGKILL (a second
    /// SIGINT, SIGTERM or SIGHUP to nsh cuts it short)
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub grace: f64,

    /// Write a JUnit XML report, one testsuite per script
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Capture each script's datagrams as pcapng into DIR (created if
    /// missing), one file per script named after its path
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,

    /// Write JSON lines: one object per message sent or received (time,
    /// direction, peer, summary, hex) and one per case result
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a static HTML report into DIR (created if missing) as
    /// index.html: a pass/fail table and a message sequence chart per case
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,

    /// Print each script's output (and its client's), not only a failed
    /// one's
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Run the OMA LwM2M 1.1 interoperability cases shipped with nsh
    /// (stdlib/ets/, LightweightM2M-1.1-int-*) instead of PATHS; pick cases
    /// with --filter int-203
    #[arg(long, conflicts_with = "paths")]
    pub ets: bool,

    /// Expected values for the cases, as the constant PROFILE: a JSON object
    /// or Rhai map, e.g. {"manufacturer": "ACME", "model": "X1", "serial":
    /// "42", "firmware_version": "1.0", "lifetime": 300, "binding": "U",
    /// "observe_path": "/3/0/13", "pmin": 2, "pmax": 4, "tolerance_s": 0.5}.
    /// Without it cases read what they need from the device, and skip with
    /// a reason where an expected value is needed
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// How each script's server listens.
    #[command(flatten)]
    pub security: TestSecurity,
}

/// How every script's server listens: CoAP over TCP, DTLS or TLS with
/// these credentials (`{uri}` says `coap+tcp://`, `coaps://` or
/// `coaps+tcp://` then).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Security (each script's server)")]
pub struct TestSecurity {
    /// CoAP over TCP (RFC 8323) instead of UDP; with credentials, over
    /// TLS 1.2 instead of DTLS
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// PSK identity (literal text)
    #[arg(short = 'i', long, value_name = "ID")]
    pub psk_identity: Option<String>,
    /// PSK key (literal text)
    #[arg(short = 'k', long, value_name = "KEY")]
    pub psk_key: Option<String>,
    /// PSK key in hex (70617373776f7264)
    #[arg(long, value_name = "HEX")]
    pub psk_key_hex: Option<String>,
    /// PSK table: one `identity,hexkey` per line
    #[arg(long, value_name = "FILE")]
    pub psk_file: Option<String>,
    /// Certificate (PEM or DER), with --key-file
    #[arg(long, value_name = "FILE")]
    pub crt_file: Option<String>,
    /// Its private key (PEM or DER, unencrypted)
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<String>,
    /// Client certificates must chain to these CAs
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
    /// The same, from every *.pem/*.crt/*.der in DIR
    #[arg(long, value_name = "DIR")]
    pub ca_path: Option<String>,
    /// Cipher suites in order of preference (IANA names or numbers,
    /// comma-separated)
    #[arg(long, value_name = "LIST")]
    pub ciphersuites: Option<String>,
}

impl TestSecurity {
    /// The checked credentials (`None`: plain CoAP).
    pub fn resolve(&self) -> Result<Option<Security>, String> {
        SecurityArgs {
            psk_identity: self.psk_identity.clone(),
            psk_key: self.psk_key.clone(),
            psk_key_hex: self.psk_key_hex.clone(),
            psk_file: self.psk_file.clone(),
            crt_file: self.crt_file.clone(),
            key_file: self.key_file.clone(),
            ca_file: self.ca_file.clone(),
            ca_path: self.ca_path.clone(),
            ciphersuites: self.ciphersuites.clone(),
            ..SecurityArgs::default()
        }
        .resolve(None)
    }
}

/// The URI a client is given for nsh on `port`.
fn server_uri(secure: bool, tcp: bool, port: u16) -> String {
    let scheme = match (secure, tcp) {
        (false, false) => "coap",
        (true, false) => "coaps",
        (false, true) => "coap+tcp",
        (true, true) => "coaps+tcp",
    };
    format!("{scheme}://127.0.0.1:{port}")
}

/// A script found: its path, its report name ([`find_scripts`]) and its
/// text when it ships with nsh (`--ets`).
type Found = (PathBuf, String, Option<&'static str>);

/// A script to run, and the case filter it runs with.
struct Planned {
    path: PathBuf,
    /// Its name in the JUnit report: its path under the directory given,
    /// without `.rhai` (`x/read`), unique in the run.
    name: String,
    /// The script's text when it ships with nsh (`--ets`).
    source: Option<&'static str>,
    /// Only cases containing this run (`None`: all).
    cases: Option<String>,
}

/// What one script did.
struct ScriptResult {
    path: PathBuf,
    /// Its name in the JUnit report (see [`Planned`]).
    name: String,
    tests: Vec<TestOutcome>,
    error: Option<RunError>,
    duration: Duration,
    /// The script's own output (commands, `print`, received messages).
    output: Vec<String>,
    /// The client's output.
    client_output: String,
    /// Messages left unread at the end.
    end_note: Option<String>,
    /// Why the script stopped early when a case took the failure (`FILE:
    /// timed out after 2 s (--timeout) in case 3 (reads)`): said on the
    /// script's line, not counted again.
    stopped: Option<String>,
    /// Why the cases it did not reach were not run, when it stopped early
    /// (`not run: case 2 (hangs) timed out after 2 s (--timeout)`).
    not_run: Option<String>,
    /// Why it was not started (`not run: interrupted by SIGINT`), when it
    /// was not; its cases are listed as not run.
    not_started: Option<String>,
    /// When it began.
    started_at: std::time::SystemTime,
    /// When it ended (the wall clock read then, as the messages' times).
    ended_at: std::time::SystemTime,
    /// When the script itself stopped (before its client was stopped), when
    /// it began: the time of the cases it did not reach.
    ran_until: Option<std::time::SystemTime>,
    /// How many of its case lines were printed as each case ended (`--jobs
    /// 1`).
    cases_printed: usize,
    /// Every message of the run (with `--json` or `--report`).
    events: Vec<report::Event>,
}

impl ScriptResult {
    /// A script that was not started (`why`: `not run: interrupted by
    /// SIGINT`): its cases listed as not run, or itself as skipped when it
    /// has none.
    fn not_started(plan: &Planned, why: &str) -> ScriptResult {
        let now = std::time::SystemTime::now();
        let tests = not_run_outcomes(plan, &[], why, now);
        ScriptResult {
            path: plan.path.clone(),
            name: plan.name.clone(),
            error: tests.is_empty().then(|| RunError::Skipped(why.to_string())),
            not_started: Some(why.to_string()),
            tests,
            duration: Duration::ZERO,
            output: Vec::new(),
            client_output: String::new(),
            end_note: None,
            stopped: None,
            not_run: None,
            started_at: now,
            ended_at: now,
            ran_until: None,
            cases_printed: 0,
            events: Vec::new(),
        }
    }

    /// Notes that it ended: how long it ran (`started`: the monotonic
    /// clock at its start) and when (the wall clock).
    fn end(&mut self, started: std::time::Instant) {
        self.duration = started.elapsed();
        self.ended_at = std::time::SystemTime::now();
    }

    fn failed(&self) -> bool {
        matches!(self.error, Some(RunError::Script(_)))
            || self.tests.iter().any(|t| t.failure.is_some())
    }

    /// (passed, failed, skipped): the cases, plus the script itself when it
    /// failed or was skipped outside them, or had none.
    fn counts(&self) -> (usize, usize, usize) {
        let failed = self.tests.iter().filter(|t| t.failure.is_some()).count();
        let skipped = self.tests.iter().filter(|t| t.skipped.is_some()).count();
        let passed = self.tests.len() - failed - skipped;
        match &self.error {
            Some(RunError::Script(_)) => (passed, failed + 1, skipped),
            Some(RunError::Skipped(_)) => (passed, failed, skipped + 1),
            _ if self.tests.is_empty() => (1, 0, 0),
            _ => (passed, failed, skipped),
        }
    }

    /// What the JSON lines and the HTML report show of it: its cases (and
    /// the script itself when it failed or was skipped outside them, or had
    /// none) and its messages.
    fn report(&self) -> report::ScriptReport {
        let path = self.path.display().to_string();
        let mut cases: Vec<report::Case> = self
            .tests
            .iter()
            .map(|t| report::Case {
                name: t.name.clone(),
                status: match (&t.failure, &t.skipped) {
                    (Some(_), _) => report::Status::Failed,
                    (None, Some(_)) => report::Status::Skipped,
                    (None, None) => report::Status::Passed,
                },
                message: t.failure.clone().or_else(|| t.skipped.clone()),
                started: t.started,
                ended: t.ended,
                duration: t.duration,
                notes: t.note.iter().chain(&t.left_active).cloned().collect(),
            })
            .collect();
        let whole = |status, message: Option<&String>| report::Case {
            name: path.clone(),
            status,
            message: message.cloned(),
            started: self.started_at,
            ended: self.ended_at,
            duration: self.duration,
            notes: self.end_note.iter().cloned().collect(),
        };
        match &self.error {
            Some(RunError::Script(e)) => cases.push(whole(report::Status::Failed, Some(e))),
            Some(RunError::Skipped(reason)) => {
                cases.push(whole(report::Status::Skipped, Some(reason)));
            }
            // A script without cases is one, as in the JUnit report.
            _ if self.tests.is_empty() => cases.push(whole(report::Status::Passed, None)),
            _ => {}
        }
        report::ScriptReport {
            path,
            cases,
            events: self.events.clone(),
            duration: self.duration,
        }
    }

    /// The lines printed for it: its cases, then its own line.
    fn render(&self, verbose: bool) -> String {
        let mut s = String::new();
        for (i, t) in self.tests.iter().enumerate().skip(self.cases_printed) {
            s.push_str(&case_line(i + 1, t));
            s.push('\n');
        }
        if let Some(n) = &self.end_note {
            s.push_str(&format!("# {n}\n"));
        }
        let path = self.path.display();
        let secs = self.duration.as_secs_f64();
        let (passed, failed, skipped) = self.counts();
        let mut tally = format!("{passed} passed");
        if failed > 0 {
            tally.push_str(&format!(", {failed} failed"));
        }
        if skipped > 0 {
            tally.push_str(&format!(", {skipped} skipped"));
        }
        match &self.error {
            Some(RunError::Script(e)) => s.push_str(&format!(
                "not ok - {path} ({tally}, {secs:.2} s)\n  # {}\n",
                e.replace('\n', "\n  # ")
            )),
            Some(RunError::Skipped(reason)) => {
                s.push_str(&format!("skip - {path} # {reason}\n"));
            }
            _ if self.not_started.is_some() => {
                let why = self.not_started.as_deref().unwrap_or_default();
                s.push_str(&format!("skip - {path} # {why}\n"));
            }
            _ if self.failed() => {
                s.push_str(&format!("not ok - {path} ({tally}, {secs:.2} s)\n"));
                if let Some(why) = &self.stopped {
                    s.push_str(&format!("  # {why}\n"));
                }
            }
            _ => s.push_str(&format!("ok - {path} ({tally}, {secs:.2} s)\n")),
        }
        if verbose || self.failed() {
            let shown = if verbose { usize::MAX } else { 30 };
            for (title, text) in [
                ("output", self.output.join("\n")),
                ("client output", self.client_output.clone()),
            ] {
                let lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let from = lines.len().saturating_sub(shown);
                let cut = if from > 0 {
                    format!(", last {shown} of {} lines", lines.len())
                } else {
                    String::new()
                };
                s.push_str(&format!("  --- {title} of {path}{cut} ---\n"));
                for l in &lines[from..] {
                    s.push_str(&format!("  | {l}\n"));
                }
            }
        }
        s
    }
}

/// The signals that stop a run as Ctrl-C does.
const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// The signals that stopped the run.
#[derive(Default)]
struct Stop {
    /// The first one's number, 0 until one comes.
    first: AtomicI32,
    /// Whether a second one came: the clients are killed without grace.
    again: AtomicBool,
}

impl Stop {
    /// The first signal's number, 0 when none came.
    fn signal(&self) -> i32 {
        self.first.load(Ordering::SeqCst)
    }

    /// Whether a second signal came.
    fn again(&self) -> bool {
        self.again.load(Ordering::SeqCst)
    }
}

/// `SIGTERM` for 15, etc.
fn signal_name(sig: i32) -> String {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT".into(),
        signal_hook::consts::SIGTERM => "SIGTERM".into(),
        signal_hook::consts::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// Runs `nsh test`; the exit code is 0 only when nothing failed (2 for a
/// wrong path or argument, or nothing to run; 128 + N after signal N:
/// 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
pub fn run(args: TestArgs) -> ExitCode {
    let scripts: Vec<Found> = if args.ets {
        ets::SCRIPTS
            .iter()
            .map(|(p, s)| {
                let path = PathBuf::from(p);
                (path.clone(), stem(&path), Some(*s))
            })
            .collect()
    } else {
        match find_scripts(&args.paths) {
            Ok((scripts, libraries)) => {
                if !args.list {
                    for l in &libraries {
                        println!(
                            "# {}: defines functions only (a library to import), not run",
                            l.display()
                        );
                    }
                }
                scripts.into_iter().map(|(p, n)| (p, n, None)).collect()
            }
            Err(e) => {
                eprintln!("nsh test: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let profile = match args.profile.as_deref().map(ets::load_profile).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsh test: {e}");
            return ExitCode::from(2);
        }
    };
    for (name, v) in [
        ("--register-timeout", Some(args.register_timeout)),
        ("--grace", Some(args.grace)),
        ("--timeout", args.timeout),
    ] {
        if let Some(v) = v
            && let Err(e) = crate::script::args::seconds(name, v)
        {
            eprintln!("nsh test: {e}");
            return ExitCode::from(2);
        }
    }
    // A limit of 0 would fail every script at once (a grace of 0 kills
    // the client at once, which is meant).
    for (name, v) in [
        ("--register-timeout", Some(args.register_timeout)),
        ("--timeout", args.timeout),
    ] {
        if v == Some(0.0) {
            let what = if name == "--timeout" {
                "stop every script at once; give more than 0 s (leave it out for no limit)"
            } else {
                "fail every script before its client registered; give more than 0 s"
            };
            eprintln!("nsh test: `{name}`: 0 would {what}");
            return ExitCode::from(2);
        }
    }
    let security = match args.security.resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nsh test: {e}");
            return ExitCode::from(2);
        }
    };
    // A report that cannot be written is said before the run, not after.
    if !args.list {
        let files = [("--junit", &args.junit), ("--json", &args.json)];
        let dirs = [("--report", &args.report), ("--pcap", &args.pcap)];
        let checked = files
            .iter()
            .filter_map(|(flag, p)| p.as_ref().map(|p| report::prepare_file(flag, p)))
            .chain(
                dirs.iter()
                    .filter_map(|(flag, p)| p.as_ref().map(|p| report::prepare_dir(flag, p))),
            )
            .collect::<Result<(), String>>();
        if let Err(e) = checked {
            eprintln!("nsh test: {e}");
            return ExitCode::from(2);
        }
    }
    let plan = select(&scripts, args.filter.as_deref());
    // Nothing to run passes nothing: a CI job pointed at the wrong folder
    // must not go green.
    if plan.is_empty() && !args.list {
        if scripts.is_empty() {
            let under: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
            eprintln!("nsh test: no script to run under {}", under.join(", "));
        } else {
            eprintln!(
                "nsh test: no script or case matches --filter `{}`",
                args.filter.as_deref().unwrap_or_default()
            );
        }
        return ExitCode::from(2);
    }
    if args.list {
        for p in &plan {
            println!("{}", p.path.display());
            let source = p
                .source
                .map(str::to_string)
                .unwrap_or_else(|| std::fs::read_to_string(&p.path).unwrap_or_default());
            for case in written_cases(&source) {
                match case {
                    WrittenCase::Named(n) => {
                        if p.cases.as_deref().is_none_or(|f| n.contains(f)) {
                            println!("  {n}");
                        }
                    }
                    WrittenCase::Made(start) => {
                        println!("  {start}… (named when it runs)");
                    }
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    // SIGINT (Ctrl-C), SIGTERM (`timeout`, a cancelled CI job) and SIGHUP
    // stop the run alike; a second one cuts the clients' grace short.
    let stop = Arc::new(Stop::default());
    match signal_hook::iterator::Signals::new(STOP_SIGNALS) {
        Ok(mut signals) => {
            let stop = stop.clone();
            let grace = args.grace;
            let client = args.client.is_some();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    let name = signal_name(sig);
                    if stop
                        .first
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        if client {
                            eprintln!(
                                "nsh test: {name}: stopping; the client has {grace} s (--grace) to exit, a second signal kills it now"
                            );
                        }
                    } else if !stop.again.swap(true, Ordering::SeqCst) && client {
                        eprintln!("nsh test: second signal ({name}): killing the client now");
                    }
                }
            });
        }
        Err(e) => eprintln!("nsh test: cannot catch SIGINT, SIGTERM and SIGHUP: {e}"),
    }
    let results: Mutex<Vec<Option<ScriptResult>>> =
        Mutex::new((0..plan.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let halt = AtomicBool::new(false);
    // The script whose failure stopped the run (`--fail-fast`).
    let halted_by: Mutex<Option<String>> = Mutex::new(None);
    let print = Mutex::new(());
    let jobs = args.jobs.clamp(1, plan.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    if halt.load(Ordering::SeqCst) || stop.signal() != 0 {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = plan.get(i) else {
                        return;
                    };
                    let r = run_script(
                        i,
                        p,
                        &args,
                        profile.as_ref(),
                        security.as_ref(),
                        &stop,
                        jobs == 1,
                    );
                    if r.failed() && args.fail_fast {
                        halted_by
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| r.path.display().to_string());
                        halt.store(true, Ordering::SeqCst);
                    }
                    {
                        let _guard = print.lock().unwrap_or_else(|p| p.into_inner());
                        print!("{}", r.render(args.verbose));
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    // The scripts not started are reported too, their cases by name.
    let sig = stop.signal();
    let (why, cause) = match halted_by.into_inner().unwrap_or_else(|p| p.into_inner()) {
        _ if sig != 0 => {
            let by = format!("interrupted by {}", signal_name(sig));
            (format!("not run: {by}"), by)
        }
        Some(path) => (
            format!("not run: --fail-fast after {path} failed"),
            "--fail-fast".to_string(),
        ),
        None => ("not run".to_string(), "not started".to_string()),
    };
    let mut not_run = 0;
    let results: Vec<ScriptResult> = results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(&plan)
        .map(|(r, p)| {
            r.unwrap_or_else(|| {
                not_run += 1;
                let r = ScriptResult::not_started(p, &why);
                print!("{}", r.render(args.verbose));
                r
            })
        })
        .collect();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for r in &results {
        let (p, f, s) = r.counts();
        passed += p;
        failed += f;
        skipped += s;
    }
    if not_run > 0 {
        let noun = if not_run == 1 { "script" } else { "scripts" };
        println!("# {not_run} {noun} not run ({cause})");
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if let Some(file) = &args.json {
        let reports: Vec<report::ScriptReport> = results.iter().map(ScriptResult::report).collect();
        if let Err(e) = write_file(file, &report::json::lines(&reports)) {
            eprintln!("nsh test: --json: cannot write {}: {e}", file.display());
            return ExitCode::from(1);
        }
    }
    if let Some(dir) = &args.report {
        let reports: Vec<report::ScriptReport> = results.iter().map(ScriptResult::report).collect();
        let page = dir.join("index.html");
        if let Err(e) = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&page, report::html::page(&reports)))
        {
            eprintln!("nsh test: --report: cannot write {}: {e}", page.display());
            return ExitCode::from(1);
        }
    }
    if let Some(file) = &args.junit {
        let suites: Vec<String> = results
            .iter()
            .map(|r| {
                let mut out = r.output.join("\n");
                if !r.client_output.is_empty() {
                    out.push_str("\n--- client output ---\n");
                    out.push_str(&r.client_output);
                }
                junit::suite(
                    &r.name,
                    &r.path,
                    &r.tests,
                    r.error.as_ref(),
                    r.duration,
                    Some(&out),
                )
            })
            .collect();
        if let Err(e) = write_file(file, &junit::document(&suites)) {
            eprintln!("nsh test: --junit: cannot write {}: {e}", file.display());
            return ExitCode::from(1);
        }
    }
    if sig != 0 {
        // The shell's convention: 128 + the signal's number.
        ExitCode::from(u8::try_from(128 + sig).unwrap_or(1))
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes `text` to `file`, creating its directory when missing.
fn write_file(file: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, text)
}

/// A script's path and its report name.
type Named = (PathBuf, String);

/// A script's file name without `.rhai`.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "script".into(), |s| s.to_string_lossy().into_owned())
}

/// The scripts under `paths`, each with its report name: a file as given
/// (named by its stem), a directory's `*.rhai` (recursively, named by their
/// path under it without `.rhai`: `x/read`), each directory's sorted by
/// path; and apart, the files of those directories that are libraries
/// ([`is_library`]), which are not run. Names that would still collide
/// (`x/read.rhai` and `y/read.rhai` both given) are the paths as given.
fn find_scripts(paths: &[PathBuf]) -> Result<(Vec<Named>, Vec<PathBuf>), String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, libs: &mut Vec<PathBuf>) -> Result<(), String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out, libs)?;
            } else if p.extension().is_some_and(|x| x == "rhai") {
                let library = std::fs::read_to_string(&p).is_ok_and(|s| is_library(&s));
                if library {
                    libs.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        Ok(())
    }
    let (mut out, mut libs) = (Vec::new(), Vec::new());
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, &mut libs)?;
            out.extend(found.into_iter().map(|f| {
                let name = f
                    .strip_prefix(p)
                    .map(|r| r.with_extension("").to_string_lossy().into_owned())
                    .unwrap_or_else(|_| stem(&f));
                (f, name)
            }));
        } else if p.is_file() {
            out.push((p.clone(), stem(p)));
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    let names: Vec<String> = out.iter().map(|(_, n)| n.clone()).collect();
    for (path, name) in &mut out {
        if names.iter().filter(|n| *n == name).count() > 1 {
            *name = path
                .with_extension("")
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
        }
    }
    Ok((out, libs))
}

/// Whether `source` is a library: it defines functions and has no
/// statement of its own, so running it does nothing; scripts `import` it.
/// A file that does not compile is not one (running it reports the error).
pub fn is_library(source: &str) -> bool {
    // A file with a `#!` line is meant to be run.
    if source.starts_with("#!") {
        return false;
    }
    let mut engine = rhai::Engine::new_raw();
    engine.set_max_expr_depths(256, 256);
    match engine.compile(source) {
        Ok(ast) => {
            let body: &[_] = ast.as_ref();
            body.is_empty() && ast.has_functions()
        }
        Err(_) => false,
    }
}

/// The scripts `filter` selects: every one whose path contains it (all its
/// cases), else those with a case whose name contains it (those cases).
fn select(scripts: &[Found], filter: Option<&str>) -> Vec<Planned> {
    scripts
        .iter()
        .filter_map(|(path, name, shipped)| {
            let Some(f) = filter else {
                return Some(Planned {
                    path: path.clone(),
                    name: name.clone(),
                    source: *shipped,
                    cases: None,
                });
            };
            if path.display().to_string().contains(f) {
                return Some(Planned {
                    path: path.clone(),
                    name: name.clone(),
                    source: *shipped,
                    cases: None,
                });
            }
            let source = match shipped {
                Some(s) => (*s).to_string(),
                None => std::fs::read_to_string(path).ok()?,
            };
            // A case named at run time may match: the script runs, and
            // `test` itself skips the cases whose names do not.
            written_cases(&source)
                .iter()
                .any(|c| match c {
                    WrittenCase::Named(n) => n.contains(f),
                    WrittenCase::Made(_) => true,
                })
                .then(|| Planned {
                    path: path.clone(),
                    name: name.clone(),
                    source: *shipped,
                    cases: Some(f.to_string()),
                })
        })
        .collect()
}

/// A `test(…)` case as written in a script's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WrittenCase {
    /// Named by a string literal alone.
    Named(String),
    /// Named by an expression (`"reads " + path`, a constant): its name is
    /// made at run time; the literal it starts with, if any.
    Made(String),
}

/// The names of the `test("name", …)` cases written in `source` with a
/// string literal alone, in order.
pub fn static_cases(source: &str) -> Vec<String> {
    written_cases(source)
        .into_iter()
        .filter_map(|c| match c {
            WrittenCase::Named(n) => Some(n),
            WrittenCase::Made(_) => None,
        })
        .collect()
}

/// Every `test(…)` case written in `source`, in order.
pub fn written_cases(source: &str) -> Vec<WrittenCase> {
    let mut out = Vec::new();
    for i in test_calls(source) {
        let from = i + 4;
        let rest = source[from..].trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('"') else {
            // `test(NAME, …)`: a name that is not a literal.
            if !rest.trim_start().starts_with(')') {
                out.push(WrittenCase::Made(String::new()));
            }
            continue;
        };
        let mut name = String::new();
        let mut chars = rest.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => match chars.next() {
                    Some('n') => name.push('\n'),
                    Some('t') => name.push('\t'),
                    Some(other) => name.push(other),
                    None => break,
                },
                c => name.push(c),
            }
        }
        if closed {
            let alone = chars.as_str().trim_start().starts_with(',');
            out.push(if alone {
                WrittenCase::Named(name)
            } else {
                WrittenCase::Made(name)
            });
        }
    }
    out
}

/// Where the word `test` stands in `source`'s code: not in a comment
/// (`//`, `/* */`, nested as Rhai nests them), a string or a character
/// literal, nor part of a longer name, nor inside the arguments of a
/// `test(…)` call (a case inside a case is refused when it runs).
fn test_calls(source: &str) -> Vec<usize> {
    let b = source.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    // How many parentheses are open, and how many were when the `test(`
    // whose arguments are being read opened.
    let mut depth = 0usize;
    let mut inside: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                if inside == Some(depth) {
                    inside = None;
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            quote @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == b'\\' && quote != b'`' { 2 } else { 1 };
                }
                i += 1;
            }
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                if &b[start..i] == b"test" && inside.is_none() {
                    out.push(start);
                    let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
                    if next == Some(&b'(') {
                        inside = Some(depth);
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Runs one script in a fresh server and shell, with its client; with
/// `live`, prints each case's line as it ends. When the script stopped
/// before its end (a timeout, a signal, an error, `skip`, a client that
/// did not register), the cases written in it that did not run are listed
/// after those that did, skipped with the reason ([`not_run_cases`]).
fn run_script(
    index: usize,
    plan: &Planned,
    args: &TestArgs,
    profile: Option<&Map>,
    security: Option<&Security>,
    stop: &Stop,
    live: bool,
) -> ScriptResult {
    let mut result = run_script_cases(index, plan, args, profile, security, stop, live);
    let why = result.not_run.clone().or_else(|| match &result.error {
        Some(RunError::Script(e)) => Some(format!(
            "not run: the script failed: {}",
            e.lines().next().unwrap_or_default()
        )),
        Some(RunError::Skipped(reason)) => {
            Some(format!("not run: the script was skipped: {reason}"))
        }
        _ => None,
    });
    if let Some(why) = why {
        let ran: Vec<String> = result.tests.iter().map(|t| t.name.clone()).collect();
        // Where the script stopped, before its own end: the cases keep
        // their written order when sorted by time.
        let at = result.ran_until.unwrap_or(result.ended_at);
        let more = not_run_outcomes(plan, &ran, &why, at);
        result.tests.extend(more);
    }
    result
}

/// The cases of `plan`'s script that did not run (`ran`: the names of
/// those that did), each skipped with `why` at time `at`.
fn not_run_outcomes(
    plan: &Planned,
    ran: &[String],
    why: &str,
    at: std::time::SystemTime,
) -> Vec<TestOutcome> {
    let source = match plan.source {
        Some(s) => Some(s.to_string()),
        None => std::fs::read_to_string(&plan.path).ok(),
    };
    not_run_cases(
        source.as_deref().unwrap_or_default(),
        ran,
        plan.cases.as_deref(),
    )
    .into_iter()
    .map(|name| TestOutcome {
        name,
        failure: None,
        skipped: Some(why.to_string()),
        note: None,
        duration: Duration::ZERO,
        started: at,
        ended: at,
        left_active: None,
    })
    .collect()
}

/// The names of the cases written in `source` (those `filter` selects)
/// that are not among those that ran (`ran`), in the order written; a case
/// named at run time is `reads … (named when it runs)`, counted as run
/// when a case whose name starts as its does ran.
fn not_run_cases(source: &str, ran: &[String], filter: Option<&str>) -> Vec<String> {
    let written = written_cases(source);
    let mut left: Vec<&str> = ran.iter().map(String::as_str).collect();
    let mut done = vec![false; written.len()];
    for (i, c) in written.iter().enumerate() {
        if let WrittenCase::Named(n) = c
            && let Some(at) = left.iter().position(|r| r == n)
        {
            left.remove(at);
            done[i] = true;
        }
    }
    // The longest beginnings first: `reads /3` before `reads `.
    let mut made: Vec<(usize, &str)> = written
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            WrittenCase::Made(start) => Some((i, start.as_str())),
            WrittenCase::Named(_) => None,
        })
        .collect();
    made.sort_by_key(|(_, start)| std::cmp::Reverse(start.len()));
    for (i, start) in made {
        if left.iter().any(|r| r.starts_with(start)) {
            left.retain(|r| !r.starts_with(start));
            done[i] = true;
        }
    }
    written
        .into_iter()
        .zip(done)
        .filter(|(_, done)| !done)
        .filter_map(|(c, _)| match c {
            WrittenCase::Named(n) => filter.is_none_or(|f| n.contains(f)).then_some(n),
            WrittenCase::Made(start) => filter
                .is_none_or(|f| start.contains(f))
                .then(|| format!("{start}… (named when it runs)")),
        })
        .collect()
}

/// [`run_script`] up to the cases that ran.
fn run_script_cases(
    index: usize,
    plan: &Planned,
    args: &TestArgs,
    profile: Option<&Map>,
    security: Option<&Security>,
    stop: &Stop,
    live: bool,
) -> ScriptResult {
    let started = Instant::now();
    let output = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = {
        let output = output.clone();
        Arc::new(move |line: &str| {
            output
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.to_string());
        })
    };
    let server = Server::new();
    server.set_printer(sink.clone());
    let mut result = ScriptResult {
        path: plan.path.clone(),
        name: plan.name.clone(),
        tests: Vec::new(),
        error: None,
        duration: Duration::ZERO,
        output: Vec::new(),
        client_output: String::new(),
        end_note: None,
        stopped: None,
        not_run: None,
        not_started: None,
        started_at: std::time::SystemTime::now(),
        ended_at: std::time::SystemTime::now(),
        ran_until: None,
        cases_printed: 0,
        events: Vec::new(),
    };
    let file = plan.path.display().to_string();
    // The script compiles before anything starts: a syntax error fails it
    // at once, its client not started.
    let source = match plan.source {
        Some(s) => Ok(s.to_string()),
        None => std::fs::read_to_string(&plan.path)
            .map_err(|e| RunError::Script(format!("{file}: cannot read: {e}"))),
    };
    let mut shell = Shell::with_output(server.clone(), false, sink.clone());
    if let Err(e) = source
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| shell.check_syntax(&file, s))
    {
        result.error = Some(e);
        result.end(started);
        result.ran_until = Some(result.started_at);
        std::thread::spawn(move || server.shutdown());
        return result;
    }
    let source = source.unwrap_or_default();
    server.set_default_security(security.cloned());
    server.set_default_tcp(args.security.tcp);
    let listening = if args.security.tcp {
        server.listen_tcp(0, false, security)
    } else {
        server.listen_secure(0, false, security)
    };
    let port = match listening {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(RunError::Script(format!("{file}: cannot listen: {e}")));
            result.end(started);
            return result;
        }
    };
    let mut recorded = None;
    if args.json.is_some() || args.report.is_some() {
        let pcap = match &args.pcap {
            Some(dir) => std::fs::create_dir_all(dir)
                .and_then(|()| {
                    report::pcapng::PcapngFile::create(&dir.join(capture_name(&plan.path)))
                })
                .map(|w| Some(Box::new(w) as Box<dyn crate::server::CaptureSink>))
                .map_err(|e| format!("--pcap: cannot write into {}: {e}", dir.display())),
            None => Ok(None),
        };
        let recording = pcap.and_then(|inner| {
            let (recorder, events) = report::Recorder::new(inner);
            server
                .capture_with(Box::new(recorder))
                .map_err(|e| format!("cannot start recording: {e}"))?;
            Ok(events)
        });
        match recording {
            Ok(events) => recorded = Some(events),
            Err(e) => {
                result.error = Some(RunError::Script(format!("{file}: {e}")));
                result.end(started);
                return result;
            }
        }
    } else if let Some(dir) = &args.pcap {
        let capture = std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| {
                crate::script::commands::start_capture(&server, &dir.join(capture_name(&plan.path)))
            });
        if let Err(e) = capture {
            result.error = Some(RunError::Script(format!("{file}: --pcap: {e}")));
            result.end(started);
            return result;
        }
    }
    // A bootstrap case starts the profile's `bootstrap_client` instead of
    // --client, and starts its script without waiting for a Register.
    let bootstrap = plan.source.is_some_and(ets::is_bootstrap_case);
    let template = if bootstrap {
        ets::bootstrap_client(profile)
    } else {
        args.client.clone()
    };
    let launch = client::Launch {
        template: template.clone().unwrap_or_default(),
        port,
        uri: server_uri(security.is_some(), args.security.tcp, port),
        endpoint: format!("nsh-{}-{}", std::process::id(), index + 1),
    };
    let mut client_map = Map::new();
    client_map.insert("port".into(), Dynamic::from_int(i64::from(port)));
    client_map.insert("uri".into(), launch.uri.clone().into());
    let mut running = None;
    let mut initial_register = None;
    client_map.insert("bootstrap".into(), bootstrap.into());
    if bootstrap && template.is_some() {
        let command = launch.command();
        client_map.insert("endpoint".into(), launch.endpoint.clone().into());
        client_map.insert("command".into(), command.clone().into());
        match client::Client::start(&command) {
            Ok(c) => {
                client_map.insert("pid".into(), Dynamic::from_int(i64::from(c.pid())));
                running = Some(c);
            }
            Err(e) => {
                result.error = Some(RunError::Script(format!(
                    "{file}: cannot start the bootstrap client `{command}`: {e}"
                )));
            }
        }
    } else if bootstrap {
        client_map.insert("endpoint".into(), Dynamic::UNIT);
    } else if args.client.is_some() {
        let command = launch.command();
        client_map.insert("endpoint".into(), launch.endpoint.clone().into());
        client_map.insert("command".into(), command.clone().into());
        match client::Client::start(&command) {
            Ok(mut c) => {
                client_map.insert("pid".into(), Dynamic::from_int(i64::from(c.pid())));
                match await_registration(&server, &mut c, &launch, args, stop) {
                    Ok(reg) => {
                        // Commands stay with the device under test: another
                        // that registers meanwhile does not take them over.
                        if let Some(ep) = View(&reg)
                            .field("endpoint")
                            .and_then(|e| e.into_immutable_string().ok())
                        {
                            let _ = server.use_client(&ep);
                        }
                        initial_register = Some(reg.clone());
                        client_map.insert("registration".into(), Dynamic::from(Msg(reg)));
                    }
                    Err(e) => {
                        result.error = Some(RunError::Script(format!("{file}: {e}")));
                        result.ran_until = Some(std::time::SystemTime::now());
                    }
                }
                running = Some(c);
            }
            Err(e) => {
                result.error = Some(RunError::Script(format!(
                    "{file}: cannot start the client `{command}`: {e}"
                )));
            }
        }
    } else {
        client_map.insert("endpoint".into(), Dynamic::UNIT);
    }
    if result.error.is_none() {
        *shell.ctx.suite.lock().unwrap_or_else(|p| p.into_inner()) = Some(SuiteMode {
            file: file.clone(),
            filter: plan.cases.clone(),
        });
        if live {
            let hook: crate::script::CaseHook = Arc::new(|n, t| println!("{}", case_line(n, t)));
            *shell.ctx.on_case.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        }
        shell
            .scope
            .push_constant("PORT", Dynamic::from_int(i64::from(port)));
        shell.scope.push_constant("CLIENT", client_map);
        *shell
            .ctx
            .initial_register
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = initial_register;
        shell
            .scope
            .push_constant("PROFILE", ets::profile_value(profile));
        let outcome = watched(&server, args.timeout, stop, running.as_mut(), || {
            shell.run_named(&file, &source, Vec::new())
        });
        result.ran_until = Some(std::time::SystemTime::now());
        // A timeout or a signal fails the case it stopped (which says so)
        // and ends the script, whose line says why; outside a case, the
        // script fails with it. The exit of the client fails each case
        // whose wait it ended, and says so.
        let why = server.interruption();
        let in_case = shell
            .ctx
            .interrupted_case
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        result.error = match outcome {
            Ok(()) | Err(RunError::TestsFailed { .. }) => None,
            Err(RunError::Script(e)) if why.is_some() => {
                let failure = why.map(|w| w.failure).unwrap_or_default();
                match in_case {
                    Some(case) => {
                        result.stopped = Some(format!("{file}: {failure} in {case}"));
                        result.not_run = Some(format!("not run: {case} {failure}"));
                        None
                    }
                    None => {
                        result.not_run = Some(format!("not run: {failure} outside the cases"));
                        Some(RunError::Script(format!("{file}: {failure}\n{e}")))
                    }
                }
            }
            // `exit(CODE)` with a failing status fails the script.
            Err(e @ RunError::Exit { .. }) => Some(RunError::Script(e.to_string())),
            Err(e) => Some(e),
        };
        // `exit(0)`: passed, the later cases not reached.
        if let Some(at) = shell.exited_at()
            && result.not_run.is_none()
        {
            let mut at = if at.is_empty() {
                String::new()
            } else {
                format!(" at {file}:{at}")
            };
            if let Some(case) = shell.exit_case() {
                at.push_str(&format!(" in case `{case}`"));
            }
            result.not_run = Some(format!("not run: the script ended with exit(0){at}"));
        }
        result.tests = shell
            .ctx
            .tests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if live {
            result.cases_printed = result.tests.len();
        }
        result.end_note = unread_note(&server.take_inbox(), "at the end");
    }
    if let Some(c) = running {
        result.client_output = c.stop(Duration::from_secs_f64(args.grace), &|| stop.again());
    }
    if let Err(e) = server.capture_stop()
        && result.error.is_none()
    {
        result.error = Some(RunError::Script(format!(
            "{file}: --pcap: cannot write the capture: {e}"
        )));
    }
    // Stopping the receive thread waits up to its tick (100 ms): done in
    // the background, the next script need not wait (its port is its own).
    std::thread::spawn(move || server.shutdown());
    if let Some(events) = recorded {
        result.events = std::mem::take(&mut *events.lock().unwrap_or_else(|p| p.into_inner()));
        result.events.sort_by_key(|e| e.seq);
    }
    result.output = std::mem::take(&mut *output.lock().unwrap_or_else(|p| p.into_inner()));
    result.end(started);
    result
}

/// The capture file of a script: its path with separators as `_`, e.g.
/// `cases_read.rhai.pcapng` for `cases/read.rhai`.
fn capture_name(script: &Path) -> String {
    let name: String = script
        .to_string_lossy()
        .trim_start_matches("./")
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    format!("{name}.pcapng")
}

/// Waits for the client's Register (its endpoint's, when the command names
/// it), failing early when the client exits or Ctrl-C is pressed.
fn await_registration(
    server: &Server,
    client: &mut client::Client,
    launch: &client::Launch,
    args: &TestArgs,
    stop: &Stop,
) -> Result<crate::server::RecordRef, String> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.register_timeout);
    let endpoint = launch.names_endpoint().then(|| launch.endpoint.clone());
    loop {
        let found = server
            .wait_inbox(Duration::from_millis(100), |r| {
                let v = View(r);
                v.kind_name() == "Register"
                    && endpoint.as_ref().is_none_or(|ep| {
                        v.field("endpoint")
                            .and_then(|e| e.into_immutable_string().ok())
                            .is_some_and(|e| e.as_str() == ep)
                    })
            })
            .map_err(|e| e.to_string())?;
        if let Ok(reg) = found {
            return Ok(reg);
        }
        if let Some(status) = client.exited() {
            return Err(format!("the client exited ({status}) before it registered"));
        }
        let sig = stop.signal();
        if sig != 0 {
            return Err(format!(
                "interrupted by {} before the client registered",
                signal_name(sig)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the client did not register within {} s",
                args.register_timeout
            ));
        }
    }
}

/// Runs `body`, interrupting the server's waits and the script after
/// `timeout` or on a signal (the server's [`Interruption`] says which), and
/// the waits alone once the client exits; returns its value.
fn watched<T>(
    server: &Server,
    timeout: Option<f64>,
    stop: &Stop,
    client: Option<&mut client::Client>,
    body: impl FnOnce() -> T,
) -> T {
    let (done, finished) = mpsc::channel::<()>();
    let limit = timeout.map(Duration::from_secs_f64);
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut client = client;
            loop {
                match finished.recv_timeout(Duration::from_millis(50)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                if let Some(l) = limit
                    && started.elapsed() >= l
                {
                    server.interrupt(Interruption {
                        failure: format!("timed out after {} s (--timeout)", l.as_secs_f64()),
                        cause: "by the --timeout".into(),
                        waits_only: false,
                    });
                    return;
                }
                let sig = stop.signal();
                if sig != 0 {
                    let name = signal_name(sig);
                    server.interrupt(Interruption {
                        failure: format!("interrupted by {name}"),
                        cause: format!("by {name}"),
                        waits_only: false,
                    });
                    return;
                }
                if let Some(status) = client.as_deref_mut().and_then(client::Client::exited) {
                    // Once: the waits end from now on.
                    client = None;
                    server.interrupt(Interruption {
                        failure: format!(
                            "the client exited ({status}) during the script, at {:.2} s",
                            started.elapsed().as_secs_f64()
                        ),
                        cause: format!("because the client exited ({status})"),
                        waits_only: true,
                    });
                }
            }
        });
        let value = body();
        drop(done);
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_function_definitions_only_is_a_library() {
        assert!(is_library(
            "// helpers\nfn a(x) { x + 1 }\nfn b() { a(1) }\n"
        ));
        assert!(is_library(include_str!("../../stdlib/ets/common.rhai")));
        assert!(!is_library("fn a() { 1 }\nprint(a());\n"));
        assert!(!is_library("const X = 1;\nfn a() { X }\n"));
        assert!(!is_library("test(\"t\", || { assert(true); });\n"));
        assert!(!is_library(""));
        assert!(!is_library("fn a( {"));
        assert!(!is_library("#!/usr/bin/env nsh\nfn a() { 1 }\n"));
    }

    #[test]
    fn case_names_are_read_from_string_literals() {
        let src = "test(\"a \\\"b\\\"\", || {});\nlet contest = 1;\n test ( \"two\", || 1);\ntest(name, || 2);\nmy_test(\"no\", || 3);";
        assert_eq!(static_cases(src), ["a \"b\"", "two"]);
        // Not in comments, strings or character literals.
        let hidden = "// test(\"old\", || {});\n/* a /* test(\"nested\", || 1); */ test(\"x\", || 1); */\nprint(\"test(\\\"quoted\\\", || 1)\");\nlet c = '\"'; test(\"real\", || { `test(\"tick\", 1)` });\n";
        assert_eq!(static_cases(hidden), ["real"]);
        // Names made at run time are known to be there.
        let made =
            "test(\"reads \" + p, || 1);\nconst N = \"n\";\ntest(N, || 2);\ntest(\"plain\", || 3);";
        assert_eq!(
            written_cases(made),
            [
                WrittenCase::Made("reads ".into()),
                WrittenCase::Made(String::new()),
                WrittenCase::Named("plain".into())
            ]
        );
    }

    #[test]
    fn a_test_call_inside_a_cases_arguments_is_not_a_case() {
        // Refused when it runs: the case around it is the case.
        let src = "test(\"outer\", || { test(\"inner\", || { assert(false); }); });\nlet f = |x| x;\ntest(\"after\", || { f(test); });\n";
        assert_eq!(static_cases(src), ["outer", "after"]);
    }

    #[test]
    fn the_cases_not_run_are_those_written_that_did_not() {
        let src = "test(\"a\", || 1);\ntest(\"b\", || 1);\nfor p in [1, 2] { test(\"reads \" + p, || 1); }\ntest(\"c\", || 1);\ntest(\"a\", || 2);\n";
        let ran = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            not_run_cases(src, &ran(&["a", "b"]), None),
            ["reads … (named when it runs)", "c", "a"]
        );
        assert_eq!(
            not_run_cases(src, &ran(&["a", "b", "reads 1"]), None),
            ["c", "a"]
        );
        assert_eq!(not_run_cases(src, &ran(&["a"]), Some("c")), ["c"]);
        assert_eq!(
            not_run_cases(src, &ran(&[]), Some("read")),
            ["reads … (named when it runs)"]
        );
    }

    #[test]
    fn client_commands_get_the_launch_parameters() {
        let l = client::Launch {
            template: "node c.js {uri} {port} {endpoint}".into(),
            port: 5700,
            uri: "coap://127.0.0.1:5700".into(),
            endpoint: "ep-1".into(),
        };
        assert_eq!(l.command(), "node c.js coap://127.0.0.1:5700 5700 ep-1");
        assert!(l.names_endpoint());
    }
}
