//! `nsh`: the command line. Starts the prompt, runs a script, or runs one
//! line with `-c`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use nsh::script::{LineResult, RunError, Shell};
use nsh::server::Server;

use clap::{CommandFactory, Parser, Subcommand};
use nsh::transport::dtls::settings::SecurityArgs;

/// An LwM2M server shell for testing LwM2M clients.
///
/// With SCRIPT, nsh runs it and exits 0 when it completes, 1 on any uncaught
/// error (printed as FILE:LINE:COL: message); ARGS reach the script as the
/// array ARGS. Without SCRIPT, nsh opens the prompt; `help` lists commands.
#[derive(Parser, Debug)]
#[command(name = "nsh", version, about, long_about, max_term_width = 100)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Listen on UDP PORT (5683, or 5684 with DTLS); at the prompt, wait for
    /// the first client
    #[arg(short = 'l', long = "listen", value_name = "PORT", num_args = 0..=1,
          default_missing_value = DEFAULT_PORT)]
    listen: Option<Option<ListenPort>>,

    /// With -l (and for `listen`): CoAP over TCP (RFC 8323) instead of UDP;
    /// with DTLS credentials, over TLS 1.2 (coaps+tcp) instead of DTLS
    #[arg(short = 't', long)]
    tcp: bool,

    /// Use IPv6 (dual-stack) sockets
    #[arg(short = '6', long)]
    ipv6: bool,

    /// Run one line (Rhai or a command line) and exit
    #[arg(short = 'c', value_name = "CODE")]
    code: Option<String>,

    /// With SCRIPT: write its test(...) results (or the script's own
    /// outcome) as a JUnit XML report
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Write every datagram sent and received to FILE as pcapng (DTLS as
    /// the decrypted CoAP on a second interface, TCP as a stream)
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,

    #[command(flatten)]
    dtls: DtlsFlags,

    /// The script to run
    #[arg(value_name = "SCRIPT.rhai")]
    script: Option<PathBuf>,

    /// Arguments for the script (its ARGS array)
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    script_args: Vec<String>,

    #[command(subcommand)]
    command: Option<Extra>,
}

/// DTLS 1.2: with any credentials, `-l` and `listen` serve CoAP over DTLS;
/// the values are also `listen`'s defaults.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "DTLS 1.2")]
struct DtlsFlags {
    /// PSK identity (literal text)
    #[arg(short = 'i', long, value_name = "ID")]
    psk_identity: Option<String>,
    /// PSK key (literal text)
    #[arg(short = 'k', long, value_name = "KEY")]
    psk_key: Option<String>,
    /// PSK key in hex (70617373776f7264)
    #[arg(long, value_name = "HEX")]
    psk_key_hex: Option<String>,
    /// PSK table: one `identity,hexkey` per line
    #[arg(long, value_name = "FILE")]
    psk_file: Option<String>,
    /// Certificate (PEM or DER), with --key-file
    #[arg(long, value_name = "FILE")]
    crt_file: Option<String>,
    /// Its private key (PEM or DER, unencrypted)
    #[arg(long, value_name = "FILE")]
    key_file: Option<String>,
    /// Client certificates must chain to these CAs
    #[arg(long, value_name = "FILE")]
    ca_file: Option<String>,
    /// The same, from every *.pem/*.crt/*.der in DIR
    #[arg(long, value_name = "DIR")]
    ca_path: Option<String>,
    /// Cipher suites in order of preference (IANA names or numbers,
    /// comma-separated)
    #[arg(long, value_name = "LIST")]
    ciphersuites: Option<String>,
    /// nsh's DTLS Connection ID (text, or 0x… hex)
    #[arg(long, value_name = "BYTES")]
    connection_id: Option<String>,
    /// End DTLS sessions idle for S seconds [default: 86400]
    #[arg(long, value_name = "S")]
    dtls_idle_timeout: Option<f64>,
    /// mbed TLS debug lines on stderr: 1 handshake steps, 2 records, 3
    /// everything
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "1",
          value_parser = clap::value_parser!(u8).range(1..=3))]
    debug: Option<u8>,
}

#[derive(Subcommand, Debug)]
// Parsed once per run: `test`'s many options need no boxing.
#[allow(clippy::large_enum_variant)]
enum Extra {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print nsh's man page (roff), e.g. `nsh man > nsh.1`
    Man,
    /// Run every *.rhai under PATHS, each in a fresh shell on its own port
    /// (with the device started for each by --client); exit 0 only when
    /// nothing failed, 2 when nothing was there to run
    Test(nsh::runner::TestArgs),
}

/// `-l`'s optional port.
#[derive(Clone, Copy, Debug)]
struct ListenPort(Option<u16>);

impl std::str::FromStr for ListenPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == DEFAULT_PORT {
            return Ok(ListenPort(None));
        }
        s.parse()
            .map(|p| ListenPort(Some(p)))
            .map_err(|_| format!("`{s}` is not a port number"))
    }
}

/// What `-l` stands for when a non-number follows it (the script).
const DEFAULT_PORT: &str = "default";

struct Options {
    /// `Some(None)`: `-l` without a port.
    listen: Option<Option<u16>>,
    security: SecurityArgs,
    ipv6: bool,
    tcp: bool,
    code: Option<String>,
    script: Option<PathBuf>,
    script_args: Vec<String>,
    junit: Option<PathBuf>,
    pcap: Option<PathBuf>,
}

/// `-l` takes a port only when one follows (`nsh -l script.rhai` listens on
/// the default port and runs the script), as in the original, and so does
/// every option whose value is optional (`--debug`); everything after the
/// script is the script's. A `--` is put before the script, so clap sees
/// it and what follows as positional. Which options take a value is read
/// off the clap definition.
fn normalise(args: Vec<String>) -> Vec<String> {
    let mut cli = Cli::command();
    cli.build();
    // `nsh test …`, `nsh completions …`: clap's own.
    if args
        .first()
        .is_some_and(|a| cli.get_subcommands().any(|c| c.get_name() == a))
    {
        return args;
    }
    let number = |n: &String| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--" || !a.starts_with('-') {
            // The script: it and what follows are positional.
            if a != "--" {
                out.push("--".into());
            }
            out.push(a);
            out.extend(it);
            break;
        }
        let option = cli
            .get_arguments()
            .find(|arg| {
                arg.get_long()
                    .is_some_and(|l| a.strip_prefix("--") == Some(l))
                    || arg.get_short().is_some_and(|c| a == format!("-{c}"))
            })
            .filter(|o| o.get_action().takes_values());
        out.push(a);
        match option.and_then(|o| o.get_num_args()) {
            None => {}
            // An optional value: only a number is the option's.
            Some(range) if range.min_values() == 0 => out.extend(it.next_if(number)),
            Some(_) => out.extend(it.next()),
        }
    }
    out
}

fn parse_args(args: Vec<String>) -> Result<Options, ExitCode> {
    let argv = std::iter::once("nsh".to_string()).chain(normalise(args));
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return Err(if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    match cli.command {
        Some(Extra::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "nsh", &mut std::io::stdout());
            return Err(ExitCode::SUCCESS);
        }
        Some(Extra::Man) => {
            let man = clap_mangen::Man::new(Cli::command());
            return Err(match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nsh: man: {e}");
                    ExitCode::from(1)
                }
            });
        }
        Some(Extra::Test(args)) => return Err(nsh::runner::run(args)),
        None => {}
    }
    let d = cli.dtls;
    let idle_timeout = match d.dtls_idle_timeout {
        Some(s) => match nsh::script::args::seconds("--dtls-idle-timeout", s) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("nsh: {e}");
                return Err(ExitCode::from(2));
            }
        },
        None => None,
    };
    Ok(Options {
        listen: cli.listen.map(|p| p.and_then(|p| p.0)),
        security: SecurityArgs {
            psk_identity: d.psk_identity,
            psk_key: d.psk_key,
            psk_key_hex: d.psk_key_hex,
            psk_file: d.psk_file,
            crt_file: d.crt_file,
            key_file: d.key_file,
            ca_file: d.ca_file,
            ca_path: d.ca_path,
            ciphersuites: d.ciphersuites,
            connection_id: d.connection_id,
            // nsh's levels 1–3 are mbed TLS's 2–4.
            debug: d.debug.map(|l| l + 1),
            idle_timeout,
        },
        ipv6: cli.ipv6,
        tcp: cli.tcp,
        code: cli.code,
        script: cli.script,
        script_args: cli.script_args,
        junit: cli.junit,
        pcap: cli.pcap,
    })
}

/// Output piped into a program that stops reading (`nsh test --list | head`)
/// ends nsh as it ends any Unix tool, instead of a panic in `println!`:
/// SIGPIPE gets its default action back (Rust's runtime ignores it). Sockets
/// are not affected: UDP raises no SIGPIPE and std's TCP writes pass
/// MSG_NOSIGNAL.
fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first in main, before any thread starts; installs no
    // handler of ours, only the default disposition.
    #[allow(unsafe_code)]
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The open-files limit raised as far as it goes (the soft limit to the hard
/// one), so that one listener can hold thousands of TCP connections; left as
/// it is when that is refused.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    raise_open_files_limit();
    let opts = match parse_args(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let server = Server::new();
    if let Some(file) = &opts.pcap
        && let Err(e) = nsh::script::commands::start_capture(&server, file)
    {
        eprintln!("nsh: --pcap: {e}");
        return ExitCode::from(2);
    }
    let code = run(&server, opts);
    // Whatever the outcome, the capture is written out.
    if let Err(e) = server.capture_stop() {
        eprintln!("nsh: --pcap: cannot write the capture: {e}");
        return ExitCode::from(1);
    }
    code
}

/// Everything after the command line is parsed: listening, then the
/// script, `-c` or the prompt.
fn run(server: &Server, opts: Options) -> ExitCode {
    let server = server.clone();
    let flag = server.interrupt_flag();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let interactive = opts.script.is_none() && opts.code.is_none();
    let mut shell = if opts.code.is_some() {
        Shell::for_one_line(server.clone(), opts.ipv6)
    } else {
        Shell::new(server.clone(), opts.ipv6, interactive)
    };
    let security = match opts.security.resolve(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nsh: {}", cli_wording(&e));
            return ExitCode::from(2);
        }
    };
    if let Some(warning) = opts.security.debug_unused(security.as_ref()) {
        eprintln!("{warning}");
    }
    server.set_default_security(security.clone());
    server.set_default_tcp(opts.tcp);
    if let Some(port) = opts.listen {
        let port = port.unwrap_or(if security.is_some() { 5684 } else { 5683 });
        let mark = server.history_mark();
        let listening = if opts.tcp {
            server.listen_tcp(port, opts.ipv6, security.as_ref())
        } else {
            server.listen_secure(port, opts.ipv6, security.as_ref())
        };
        match listening {
            Ok(bound) => {
                if !interactive {
                    // The line `listen` prints, so whoever runs the script
                    // (a test, CI) learns the port, also when it was 0.
                    println!(
                        "{}",
                        nsh::transport::listening_line(
                            security.as_ref(),
                            opts.tcp,
                            bound,
                            opts.ipv6
                        )
                    );
                } else {
                    println!("waiting for a client on port {bound} ... (Ctrl-C to stop waiting)");
                    match server.wait_first_client_since(mark) {
                        Ok(_) => {}
                        Err(_) => println!("stopped waiting; use `listen` to change the port"),
                    }
                    server.interrupt_flag().store(false, Ordering::SeqCst);
                }
            }
            Err(e) => {
                eprintln!("could not listen on port {port} ({e})");
                if !interactive {
                    return ExitCode::from(1);
                }
                println!("use \"listen\" command to start the server");
            }
        }
    }
    if let Some(code) = opts.code {
        return match shell.eval_one_line(&code) {
            LineResult::Error(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
            LineResult::Value(v) => {
                // What the prompt shows of the line's value (listing
                // commands printed their tables as they ran).
                if let Some(text) = nsh::script::value_text(&v) {
                    println!("{text}");
                }
                ExitCode::SUCCESS
            }
            LineResult::Exit(code) => ExitCode::from(code),
        };
    }
    if let Some(script) = opts.script {
        if let Some(report) = &opts.junit
            && let Err(e) = nsh::report::prepare_file("--junit", report)
        {
            eprintln!("nsh: {e}");
            return ExitCode::from(2);
        }
        let started = std::time::Instant::now();
        let outcome = shell.run_file(&script, opts.script_args);
        if let Some(report) = &opts.junit {
            let tests = shell
                .ctx
                .tests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let xml = nsh::script::junit::report(
                &script,
                &tests,
                outcome.as_ref().err(),
                started.elapsed(),
            );
            if let Err(e) = std::fs::write(report, xml) {
                eprintln!("nsh: --junit: cannot write {}: {e}", report.display());
                return ExitCode::from(1);
            }
        }
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            // A skipped script is not a failed one (as under `nsh test`).
            Err(RunError::Skipped(reason)) => {
                println!("skipped: {reason}");
                ExitCode::SUCCESS
            }
            Err(e @ RunError::Exit { code, .. }) => {
                eprintln!("{e}");
                ExitCode::from(code)
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    ExitCode::from(nsh::repl::run(shell) as u8)
}

/// An argument error in command-line words (`--psk-key`, not `psk_key`).
fn cli_wording(e: &str) -> String {
    let mut out = e.to_string();
    for name in [
        "psk_identity",
        "psk_key_hex",
        "psk_key",
        "psk_file",
        "crt_file",
        "key_file",
        "ca_file",
        "ca_path",
        "connection_id",
        "ciphersuites",
        "dtls_idle_timeout",
        "debug",
    ] {
        let flag = format!("--{}", name.replace('_', "-"));
        out = out.replace(&format!("`{name}`"), &flag);
        out = out.replace(&format!("use {name} in"), &format!("use {flag} in"));
        if let Some(rest) = out.strip_prefix(&format!("{name}:")) {
            out = format!("{flag}:{rest}");
        }
    }
    out
}
