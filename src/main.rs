//! `nsh`: the command line. Starts the prompt, runs a script, or runs one
//! line with `-c`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use nsh::script::{LineResult, Shell};
use nsh::server::Server;

const USAGE: &str = "\
usage: nsh [OPTIONS] [SCRIPT.rhai [ARGS...]]

An LwM2M server shell for testing LwM2M clients.

options:
  -l, --listen [PORT]   listen on UDP PORT (default 5683, or 5684 with a
                        PSK); at the prompt, wait for the first client
  -i, --psk-identity ID DTLS 1.2 PSK identity (literal text)
  -k, --psk-key KEY     DTLS 1.2 PSK key (literal text, not hex); with -i,
                        `-l` and `listen` serve CoAP over DTLS
  -t, --tcp             with -l (and for `listen`): CoAP over TCP (RFC 8323)
                        instead of UDP; not with a PSK (no TLS)
  -6, --ipv6            use IPv6 (dual-stack) sockets
  -c CODE               run one line (Rhai or a command line) and exit
  --junit FILE          with SCRIPT: write its test(...) results (or the
                        script's own outcome) as a JUnit XML report
  -h, --help            show this help
  -V, --version         show the version
  --debug               DTLS debug output: not available in this version

With SCRIPT, nsh runs it and exits 0 when it completes, 1 on any uncaught
error (printed as FILE:LINE:COL: message). ARGS reach the script as the
array ARGS. Without SCRIPT, nsh opens the prompt; `help` lists commands.";

struct Options {
    /// `Some(None)`: `-l` without a port.
    listen: Option<Option<u16>>,
    psk_identity: Option<String>,
    psk_key: Option<String>,
    ipv6: bool,
    tcp: bool,
    code: Option<String>,
    script: Option<PathBuf>,
    script_args: Vec<String>,
    junit: Option<PathBuf>,
}

fn parse_args(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options {
        listen: None,
        psk_identity: None,
        psk_key: None,
        ipv6: false,
        tcp: false,
        code: None,
        script: None,
        script_args: Vec::new(),
        junit: None,
    };
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if o.script.is_some() {
            o.script_args.push(a);
            continue;
        }
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "-V" | "--version" => {
                println!("nsh {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-6" | "--ipv6" => o.ipv6 = true,
            "-l" | "--listen" => {
                o.listen = Some(None);
                if let Some(p) = it.peek().and_then(|p| p.parse::<u16>().ok()) {
                    o.listen = Some(Some(p));
                    it.next();
                }
            }
            "-c" => o.code = Some(it.next().ok_or("-c needs CODE")?),
            "--junit" => o.junit = Some(PathBuf::from(it.next().ok_or("--junit needs FILE")?)),
            "-t" | "--tcp" => o.tcp = true,
            "-i" | "--psk-identity" => {
                o.psk_identity = Some(it.next().ok_or(format!("{a} needs an identity"))?);
            }
            "-k" | "--psk-key" => {
                o.psk_key = Some(it.next().ok_or(format!("{a} needs a key"))?);
            }
            "--debug" => return Err("--debug: there is no DTLS debug output without DTLS".into()),
            s if s.starts_with("--listen=") => {
                let p = &s["--listen=".len()..];
                o.listen =
                    Some(Some(p.parse().map_err(|_| {
                        format!("--listen: `{p}` is not a port number")
                    })?));
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option `{s}` (see --help)"));
            }
            _ => o.script = Some(PathBuf::from(a)),
        }
    }
    if o.psk_identity.is_some() != o.psk_key.is_some() {
        return Err("DTLS needs both --psk-identity and --psk-key".into());
    }
    if o.tcp && o.psk_identity.is_some() {
        return Err(
            "--tcp cannot be used with a PSK: CoAP over TLS is not available in this version of nsh"
                .into(),
        );
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("nsh: {e}");
            return ExitCode::from(2);
        }
    };
    let server = Server::new();
    let flag = server.interrupt_flag();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let interactive = opts.script.is_none() && opts.code.is_none();
    let mut shell = Shell::new(server.clone(), opts.ipv6, interactive);
    let psk = match (opts.psk_identity, opts.psk_key) {
        (Some(identity), Some(key)) => Some(nsh::transport::Psk {
            identity,
            key: key.into_bytes(),
        }),
        _ => None,
    };
    server.set_default_psk(psk.clone());
    server.set_default_tcp(opts.tcp);
    if let Some(port) = opts.listen {
        let port = port.unwrap_or(if psk.is_some() { 5684 } else { 5683 });
        let listening = if opts.tcp {
            server.listen_tcp(port, opts.ipv6)
        } else {
            server.listen_secure(port, opts.ipv6, psk.as_ref())
        };
        match listening {
            Ok(bound) => {
                if !interactive {
                    // The line `listen` prints, so whoever runs the script
                    // (a test, CI) learns the port, also when it was 0.
                    println!(
                        "listening on {} port {bound}{}",
                        match &psk {
                            Some(p) => format!("DTLS (PSK identity `{}`)", p.identity),
                            None if opts.tcp => "TCP".into(),
                            None => "UDP".into(),
                        },
                        if opts.ipv6 { " (IPv6 and IPv4)" } else { "" }
                    );
                } else {
                    println!("waiting for a client on port {bound} ... (Ctrl-C to stop waiting)");
                    match server.wait_first_client() {
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
        return match shell.eval_line(&code) {
            LineResult::Error(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
            LineResult::Value(v) => {
                if !v.is_unit()
                    && !v.is::<nsh::script::message::Msg>()
                    && nsh::script::command_form(&code).is_none()
                {
                    println!("{v}");
                }
                ExitCode::SUCCESS
            }
            LineResult::Exit => ExitCode::SUCCESS,
        };
    }
    if let Some(script) = opts.script {
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
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    ExitCode::from(nsh::repl::run(shell) as u8)
}
