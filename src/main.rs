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
  -l, --listen [PORT]   listen on UDP PORT (default 5683, or 5684 with
                        DTLS); at the prompt, wait for the first client
  -t, --tcp             with -l (and for `listen`): CoAP over TCP (RFC 8323)
                        instead of UDP; with the credentials below, over
                        TLS 1.2 (coaps+tcp) instead of DTLS

DTLS 1.2 (with any credentials, `-l` and `listen` serve CoAP over DTLS; the
values are also `listen`'s defaults):
  -i, --psk-identity ID PSK identity (literal text)
  -k, --psk-key KEY     PSK key (literal text)
  --psk-key-hex HEX     PSK key in hex (70617373776f7264)
  --psk-file FILE       PSK table: one `identity,hexkey` per line
  --crt-file FILE       certificate (PEM or DER), with --key-file
  --key-file FILE       its private key (PEM or DER, unencrypted)
  --ca-file FILE        client certificates must chain to these CAs
  --ca-path DIR         the same, from every *.pem/*.crt/*.der in DIR
  --ciphersuites LIST   cipher suites in order of preference (IANA names or
                        numbers, comma-separated)
  --connection-id BYTES nsh's DTLS Connection ID (text, or 0x… hex)
  --dtls-idle-timeout S end DTLS sessions idle for S seconds (86400)
  --debug [LEVEL]       mbed TLS debug lines on stderr: 1 handshake steps
                        (default), 2 records, 3 everything

  -6, --ipv6            use IPv6 (dual-stack) sockets
  -c CODE               run one line (Rhai or a command line) and exit
  --junit FILE          with SCRIPT: write its test(...) results (or the
                        script's own outcome) as a JUnit XML report
  -h, --help            show this help
  -V, --version         show the version

With SCRIPT, nsh runs it and exits 0 when it completes, 1 on any uncaught
error (printed as FILE:LINE:COL: message). ARGS reach the script as the
array ARGS. Without SCRIPT, nsh opens the prompt; `help` lists commands.";

struct Options {
    /// `Some(None)`: `-l` without a port.
    listen: Option<Option<u16>>,
    security: nsh::transport::dtls::settings::SecurityArgs,
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
        security: Default::default(),
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
                o.security.psk_identity = Some(it.next().ok_or(format!("{a} needs an identity"))?);
            }
            "-k" | "--psk-key" => {
                o.security.psk_key = Some(it.next().ok_or(format!("{a} needs a key"))?);
            }
            "--psk-key-hex" => o.security.psk_key_hex = Some(value(&a, &mut it)?),
            "--psk-file" => o.security.psk_file = Some(value(&a, &mut it)?),
            "--crt-file" => o.security.crt_file = Some(value(&a, &mut it)?),
            "--key-file" => o.security.key_file = Some(value(&a, &mut it)?),
            "--ca-file" => o.security.ca_file = Some(value(&a, &mut it)?),
            "--ca-path" => o.security.ca_path = Some(value(&a, &mut it)?),
            "--ciphersuites" => o.security.ciphersuites = Some(value(&a, &mut it)?),
            "--connection-id" => o.security.connection_id = Some(value(&a, &mut it)?),
            "--dtls-idle-timeout" => {
                let v = value(&a, &mut it)?;
                let s: f64 = v
                    .parse()
                    .map_err(|_| format!("{a}: `{v}` is not a number of seconds"))?;
                o.security.idle_timeout =
                    Some(nsh::script::args::seconds("--dtls-idle-timeout", s)?);
            }
            "--debug" => {
                let mut level = 1;
                if let Some(l) = it.peek().and_then(|p| p.parse::<u8>().ok()) {
                    level = l;
                    it.next();
                }
                if !(1..=3).contains(&level) {
                    return Err(format!(
                        "--debug: {level} is not a level (1 handshake steps, 2 records, 3 everything)"
                    ));
                }
                o.security.debug = Some(level + 1);
            }
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
    Ok(o)
}

/// The value after an option.
fn value(option: &str, it: &mut impl Iterator<Item = String>) -> Result<String, String> {
    it.next().ok_or_else(|| format!("{option} needs a value"))
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
    let security = match opts.security.resolve(None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nsh: {}", cli_wording(&e));
            return ExitCode::from(2);
        }
    };
    server.set_default_security(security.clone());
    server.set_default_tcp(opts.tcp);
    if let Some(port) = opts.listen {
        let port = port.unwrap_or(if security.is_some() { 5684 } else { 5683 });
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
    ] {
        let flag = format!("--{}", name.replace('_', "-"));
        out = out.replace(&format!("`{name}`"), &flag);
        if let Some(rest) = out.strip_prefix(&format!("{name}:")) {
            out = format!("{flag}:{rest}");
        }
    }
    out
}
