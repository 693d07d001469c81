//! Every command's help is true: it names only parameters the command
//! has, and its example runs as typed, against a test client, without an
//! argument error.
//!
//! The examples run in a fresh nsh each, from piped standard input (so in
//! the original's command-line form, one line each), after
//! `listen 0` (the test client registers as `sensor-2`, which ends the
//! wait) and `connect 127.0.0.1 PORT` (the test client). The test client
//! is a raw UDP socket that answers every CON request with a plausible
//! response. A command's own outcome (a timeout, a 4.xx, nothing pending)
//! is fine; an argument error, or an unknown / not found / not available
//! error, is not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsh::coap::{CoapOption, Code, ContentFormat, Message, OptionNumber, Type, udp};
use nsh::script::cmdline;
use nsh::script::command::Command;
use nsh::script::commands::{COMMANDS, find};

use crate::harness::{listening_port, nsh_bin};

/// UPPERCASE words in help texts that are not parameter placeholders:
/// protocol and format names, and values the text quotes.
const NOT_PARAMETERS: &[&str] = &[
    // CoAP message types and methods (RFC 7252, 8132).
    "CON", "NON", "ACK", "RST", "GET", "PUT", "POST", "DELETE", "FETCH", "IPATCH",
    // Transports and security (RFC 7252, 8323, 6347, 9146, 9148): "CA"
    // certificates, DTLS Connection "ID", PEM/DER files, IANA names.
    "UDP", "TCP", "DTLS", "TLS", "PSK", "EST", "CA", "ID", "PEM", "DER", "IANA",
    // Payload formats and object definitions.
    "TLV", "CBOR", "JSON", "XML", "DDF", "OMA", "URI",
    // `expect`'s pattern keyword (a value, as in the original).
    "ANY",
];

/// Words between ASCII letters, digits and `_` in `text`.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let inside = c.is_ascii_alphanumeric() || c == '_';
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

fn has_param(c: &Command, name: &str) -> bool {
    c.params.iter().any(|p| p.name.eq_ignore_ascii_case(name))
}

/// The parameters `text` names that `c` does not have: UPPERCASE
/// placeholders (not the value after a `name=`), and `name=` forms (checked
/// against the command named right before them, as in `set
/// auto_bspack_error=0`, else against `c`).
fn unknown_names(c: &Command, text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let ws = words(text);
    for (k, &(at, w)) in ws.iter().enumerate() {
        let placeholder = w.len() >= 2
            && w.chars().any(|ch| ch.is_ascii_uppercase())
            && !w.chars().any(|ch| ch.is_ascii_lowercase())
            && !w.chars().all(|ch| ch.is_ascii_digit() || ch == '_');
        let after_eq = text[..at].ends_with('=');
        if placeholder && !after_eq && !NOT_PARAMETERS.contains(&w) && !has_param(c, w) {
            bad.push(w.to_string());
        }
        let rest = &text[at + w.len()..];
        let lower = w.chars().all(|ch| !ch.is_ascii_uppercase());
        // `?ep=` and `&lt=` are a URI's query, not arguments.
        let query = text[..at].ends_with('?') || text[..at].ends_with('&');
        if lower && !query && rest.starts_with('=') && !rest.starts_with("==") {
            let owner = k
                .checked_sub(1)
                .and_then(|j| find(ws[j].1))
                .filter(|_| text[ws[k - 1].0 + ws[k - 1].1.len()..at].trim().is_empty())
                .unwrap_or(c);
            if !has_param(owner, w) {
                bad.push(format!("{w}= (of {})", owner.name));
            }
        }
    }
    bad
}

/// The lines of an example: the forms `  |  ` separates, the steps `  …  `
/// or a newline separates.
fn example_lines(example: &str) -> Vec<String> {
    example
        .split('\n')
        .flat_map(|l| l.split("  |  "))
        .flat_map(|l| l.split("  …  "))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn help_names_only_parameters_that_exist() {
    let mut bad = Vec::new();
    for c in COMMANDS {
        for name in unknown_names(c, c.help) {
            bad.push(format!("{}: help names {name}", c.name));
        }
        // In an example, `name=` words in the command-line form name
        // parameters of the line's command (UPPERCASE words are values).
        for line in example_lines(c.example) {
            let Some(cmd) = nsh::script::command_form(&line) else {
                continue;
            };
            let parsed = cmdline::parse(&line).unwrap().unwrap();
            for (name, _) in parsed.named {
                if !has_param(cmd, &name) {
                    bad.push(format!("{}: example `{line}` names {name}=", c.name));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// A plausible answer to a request nsh sends to the test client.
fn answer(req: &Message) -> Option<Message> {
    if req.mtype != Type::Confirmable {
        return None;
    }
    if req.code.is_empty() {
        // A ping.
        return Some(Message::new(Type::Reset, Code::EMPTY, req.message_id));
    }
    if !req.code.is_request() {
        // A CON response (a confirmable notification): acknowledge it.
        return Some(Message::new(
            Type::Acknowledgement,
            Code::EMPTY,
            req.message_id,
        ));
    }
    let path = req.uri_path();
    let code = match req.code {
        Code::GET | Code::FETCH => Code::CONTENT,
        Code::DELETE => Code::DELETED,
        Code::POST if path.len() == 1 && path[0] != "bs" && path[0] != "dp" => Code::CREATED,
        _ => Code::CHANGED,
    };
    let mut r = Message::response_to(req, code, 0);
    if code == Code::CONTENT {
        if req.observe() == Some(0) {
            r.add_option(CoapOption::uint(OptionNumber::OBSERVE, 1));
        }
        if req.accept().contains(&ContentFormat::LINK_FORMAT) {
            r.add_option(CoapOption::uint(
                OptionNumber::CONTENT_FORMAT,
                u64::from(ContentFormat::LINK_FORMAT.0),
            ));
            r.payload = b"</3/0/0>,</3/0/1>".to_vec();
        } else {
            // Resource 0 = "ACME" in the format asked for: SenML CBOR, LwM2M
            // JSON, SenML JSON, else TLV.
            let (format, payload): (u16, &[u8]) = match req.accept().first().map(|f| f.0) {
                Some(112) => (112, b"\x81\xa2\x00\x66/3/0/0\x03\x64ACME"),
                Some(11543) => (11543, br#"{"bn":"/3/0/","e":[{"n":"0","sv":"ACME"}]}"#),
                Some(110) => (110, br#"[{"n":"/3/0/0","vs":"ACME"}]"#),
                _ => (11542, b"\xc4\x00ACME"),
            };
            r.add_option(CoapOption::uint(
                OptionNumber::CONTENT_FORMAT,
                u64::from(format),
            ));
            r.payload = payload.to_vec();
        }
    } else if code == Code::CREATED {
        r.add_option(CoapOption::new(
            OptionNumber::LOCATION_PATH,
            path[0].clone(),
        ));
        r.add_option(CoapOption::new(OptionNumber::LOCATION_PATH, "2"));
    }
    Some(r)
}

/// The test client: answers nsh on its socket until `stop`; registers as
/// `sensor-2` with each port nsh says it listens on, and then sends an
/// Update every second (so `wait_for` and `expect` of an Update see one,
/// and a `listen` wait that began only after the Register arrived still
/// sees a first message: nsh prints the port before it starts waiting).
fn test_client(
    socket: UdpSocket,
    listening: mpsc::Receiver<u16>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut mid = 100u16;
        let mut server: Option<SocketAddr> = None;
        let mut location: Option<String> = None;
        let mut next_update = Instant::now();
        let mut send = |m: &mut Message, to: SocketAddr| {
            mid = mid.wrapping_add(1);
            m.message_id = mid;
            m.token = vec![0xaa, mid as u8];
            let _ = socket.send_to(&udp::encode(m), to);
        };
        while !stop.load(Ordering::SeqCst) {
            while let Ok(port) = listening.try_recv() {
                let mut reg = Message::new(Type::Confirmable, Code::POST, 0);
                reg.set_uri("/rd?ep=sensor-2&lt=600");
                reg.add_option(CoapOption::uint(
                    OptionNumber::CONTENT_FORMAT,
                    u64::from(ContentFormat::LINK_FORMAT.0),
                ));
                reg.payload = b"</1/0>,</3/0>".to_vec();
                let to: SocketAddr = ([127, 0, 0, 1], port).into();
                send(&mut reg, to);
                server = Some(to);
                location = None;
            }
            if let (Some(to), Some(loc)) = (server, &location)
                && Instant::now() >= next_update
            {
                let mut update = Message::new(Type::Confirmable, Code::POST, 0);
                update.set_uri(loc);
                send(&mut update, to);
                next_update = Instant::now() + Duration::from_secs(1);
            }
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = udp::decode(&buf[..n]) else {
                continue;
            };
            if m.code == Code::CREATED && Some(from) == server {
                location = Some(m.location_string());
            }
            if let Some(r) = answer(&m) {
                let _ = socket.send_to(&udp::encode(&r), from);
            }
        }
    })
}

/// Lines run before a command's example where it needs history: `details
/// 4` shows the 4th last message, and a fresh nsh has only the
/// registration's two.
fn prelude(command: &str) -> &'static [&'static str] {
    match command {
        "details" => &["read /3/0"],
        _ => &[],
    }
}

/// Per-command treatment of an example line before it runs. Fixed ports
/// become 0: the examples run at once, and a port one example binds would
/// refuse the next (and may be taken on the machine).
fn as_run(command: &str, line: &str) -> String {
    match command {
        "listen" | "file_server" => line.replace("9000", "0").replace("5700", "0"),
        _ => line.to_string(),
    }
}

/// Text that shows an example did not run as its help says.
const ERRORS: &[&str] = &[
    "unknown",
    "not found",
    "not available",
    "no such",
    "missing value",
    "given twice",
    "takes no",
    "is not a",
    "expected (",
    "syntax error",
    "ambiguous",
    "unclosed",
    "cannot",
    "must be",
    "out of range",
];

/// The files and folders the examples name, in `dir`.
fn fixtures(dir: &Path) {
    std::fs::write(dir.join("firmware.bin"), vec![0x5a; 300]).unwrap();
    std::fs::create_dir_all(dir.join("fw")).unwrap();
    std::fs::write(dir.join("fw/app.bin"), b"fw").unwrap();
    std::fs::create_dir_all(dir.join("objects")).unwrap();
    std::fs::write(
        dir.join("objects/9999.xml"),
        "<LWM2M><Object ObjectType=\"MODefinition\"><Name>Test</Name><ObjectID>9999</ObjectID>\
         <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources>\
         <Item ID=\"1\"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>\
         <Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item></Resources></Object></LWM2M>",
    )
    .unwrap();
}

/// Runs `c`'s example in a fresh nsh; returns its output, or why it failed.
fn run_example(c: &'static Command) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("nsh-help-{}-{}", std::process::id(), c.name));
    std::fs::create_dir_all(&dir).unwrap();
    fixtures(&dir);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let (to_client, listening) = mpsc::channel();
    let client = test_client(socket, listening, stop.clone());

    let mut input = format!("listen 0\nconnect 127.0.0.1 {port}\n");
    for line in prelude(c.name) {
        input.push_str(line);
        input.push('\n');
    }
    for line in example_lines(c.example) {
        input.push_str(&as_run(c.name, &line));
        input.push('\n');
    }
    let mut child = Process::new(nsh_bin())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = listening_port(&line) {
                let _ = to_client.send(p);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let deadline = Instant::now() + Duration::from_secs(40);
    let blocked = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break true;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = format!(
        "{}{}",
        out_reader.join().unwrap(),
        err_reader.join().unwrap()
    );
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let shown = format!("input:\n{input}output:\n{out}");
    if blocked {
        return Err(format!("blocked (did not end within 40 s)\n{shown}"));
    }
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ERRORS.iter().any(|e| l.contains(e))
        })
        .collect();
    if errors.is_empty() {
        Ok(shown)
    } else {
        Err(format!("error lines {errors:?}\n{shown}"))
    }
}

#[test]
fn every_commands_example_runs_against_a_test_client() {
    // Every command, none skipped; all at once (several examples wait for
    // a timeout: `recv 10`, `wait_for`, `expect` with a timeout).
    let runs: Vec<_> = COMMANDS
        .iter()
        .map(|c| (c.name, std::thread::spawn(move || run_example(c))))
        .collect();
    let mut failed = Vec::new();
    for (name, run) in runs {
        match run.join().unwrap() {
            Ok(out) => eprintln!("== {name}: ok\n{out}"),
            Err(e) => failed.push(format!("== {name}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
