//! Crafted requests from libcoap's `coap-client-notls` (Debian libcoap3-bin).

use std::process::Command;
use std::time::Duration;

use crate::harness::{KillOnDrop, listening_port, run_nsh, script};

fn coap_client(args: &[&str]) {
    let out = Command::new("coap-client-notls")
        .args(args)
        .output()
        .expect(
            "coap-client-notls is missing: run `bash tests/setup.sh` (Debian package libcoap3-bin)",
        );
    assert!(
        out.status.success(),
        "coap-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn crafted_register_and_send_are_classified_and_answered() {
    let mut port = 0;
    let run = run_nsh(
        &[&script("libcoap.rhai")],
        Duration::from_secs(60),
        |line| {
            let base = format!("coap://127.0.0.1:{port}");
            if let Some(p) = listening_port(line) {
                port = p;
            } else if line.contains("@@register") {
                let uri = format!("{base}/rd?ep=cc&lt=300&lwm2m=1.1&b=U");
                std::thread::spawn(move || {
                    coap_client(&["-U", "-m", "post", "-t", "40", "-e", "</1/0>,</3/0>", &uri])
                });
            } else if line.contains("@@send") {
                let uri = format!("{base}/dp");
                std::thread::spawn(move || {
                    coap_client(&[
                        "-U",
                        "-m",
                        "post",
                        "-t",
                        "110",
                        "-e",
                        r#"[{"n":"/3/0/0","vs":"ACME"}]"#,
                        &uri,
                    ])
                });
            }
        },
    );
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("<- Register /rd?ep=cc&lt=300&lwm2m=1.1&b=U: </1/0>,</3/0>"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("-> Created /rd/1"), "{}", run.stdout);
    assert!(run.stdout.contains("<- Send /dp"), "{}", run.stdout);
    assert!(
        run.stdout.contains("/3/0/0 Manufacturer = \"ACME\""),
        "{}",
        run.stdout
    );
}

#[test]
fn a_register_over_ipv6_is_answered_on_a_dual_stack_socket() {
    let mut port = 0;
    let script = script("ipv6.rhai");
    let run = run_nsh(&["-6", &script], Duration::from_secs(60), |line| {
        if let Some(p) = listening_port(line) {
            port = p;
        } else if line.contains("@@register") {
            let uri6 = format!("coap://[::1]:{port}/rd?ep=v6&lt=60");
            let uri4 = format!("coap://127.0.0.1:{port}/rd?ep=v4&lt=60");
            std::thread::spawn(move || {
                coap_client(&["-U", "-m", "post", "-t", "40", "-e", "</3/0>", &uri6]);
                coap_client(&["-U", "-m", "post", "-t", "40", "-e", "</3/0>", &uri4]);
            });
        }
    });
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}

/// `coap-server-notls` (Debian libcoap3-bin) on a port of its own choosing,
/// with dynamic resources (`-d`): PUT creates a resource of any size, GET
/// reads it back block-wise with Size2. Killed when dropped.
fn libcoap_server() -> (KillOnDrop, u16) {
    libcoap_server_on("UDP")
}

/// [`libcoap_server`], and the port of its `UDP` or `TCP` endpoint (it
/// opens both, each on a port of its own).
pub(crate) fn libcoap_server_on(endpoint: &str) -> (KillOnDrop, u16) {
    let created = format!("created {endpoint}  endpoint ");
    // On port 0; its debug log names the bound port once it is listening.
    let mut server = KillOnDrop(
        Command::new("coap-server-notls")
            .args(["-A", "127.0.0.1", "-p", "0", "-d", "10", "-v", "7"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "coap-server-notls is missing: run `bash tests/setup.sh` (Debian package libcoap3-bin)",
            ),
    );
    let log = server.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(log)).map_while(Result::ok) {
            if let Some((_, addr)) = line.split_once(created.as_str())
                && let Some(port) = addr.trim().rsplit(':').next()
            {
                let _ = tx.send(port.parse::<u16>());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("coap-server-notls names its endpoint")
        .expect("a port number");
    (server, port)
}

/// Block1 upload (`write_file`) and Block2 read back against libcoap's
/// `coap-server-notls` (Debian libcoap3-bin).
#[test]
fn write_file_uploads_block_by_block_and_a_read_gets_it_back_whole() {
    let (server, port) = libcoap_server();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = std::env::temp_dir().join(format!("nsh-block-{}.bin", std::process::id()));
    std::fs::write(&file, &data).unwrap();
    let hex = nsh::coap::escaped::format_hex(&data);
    let run = run_nsh(
        &[
            &script("block_transfer.rhai"),
            &port.to_string(),
            file.to_str().unwrap(),
            &hex,
        ],
        Duration::from_secs(60),
        |_| {},
    );
    drop(server);
    let _ = std::fs::remove_file(&file);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
}

/// A 200 KB Block2 read from libcoap's server shows its progress as
/// write_file does (bytes, percentage, block number); a read whose server
/// goes away mid-transfer says at which block it stopped and how much had
/// arrived.
#[test]
fn a_block2_read_shows_its_progress_and_where_it_stopped() {
    const SIZE: usize = 200_000;
    let (server, port) = libcoap_server();
    let server = std::cell::RefCell::new(Some(server));
    let data: Vec<u8> = (0..SIZE as u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = std::env::temp_dir().join(format!("nsh-block-read-{}.bin", std::process::id()));
    std::fs::write(&file, &data).unwrap();
    let mut phase = 0;
    let run = run_nsh(
        &[
            &script("block_read.rhai"),
            &port.to_string(),
            file.to_str().unwrap(),
            &SIZE.to_string(),
        ],
        Duration::from_secs(90),
        |line| {
            if line.contains("@@stop-server") {
                phase = 1;
            } else if phase == 1 && line.starts_with("Read /5/0/0: ") && line.contains("(20%)") {
                // Gone in the middle of the second read.
                phase = 2;
                drop(server.borrow_mut().take());
            }
        },
    );
    drop(server);
    let _ = std::fs::remove_file(&file);
    run.assert_ok();
    assert!(run.stdout.contains("@@done"), "{}", run.stdout);
    let whole = run
        .stdout
        .split_once("@@whole")
        .and_then(|(_, rest)| rest.split_once("@@stop-server"))
        .map(|(whole, _)| whole)
        .unwrap_or_default();
    // One line each tenth, like write_file's, with the block number.
    for percent in [10, 50, 90] {
        assert!(
            whole.lines().any(|l| l.starts_with("Read /5/0/0: ")
                && l.contains(&format!("/{SIZE} bytes ({percent}%), block "))),
            "no {percent}% line:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("write_file: ")
            && run.stdout.contains(&format!("/{SIZE} bytes (50%), block ")),
        "{}",
        run.stdout
    );
}

/// The manual's `file_server DIR PORT` (7.1.2.7.2), typed as shown; a
/// libcoap client downloads a file larger than one block, then Ctrl-C
/// (SIGINT) stops the server.
#[test]
fn file_server_serves_a_download_until_ctrl_c() {
    let dir = std::env::temp_dir().join(format!("nsh-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("Makefile"), &data).unwrap();
    // Port 0: the server names the port it bound.
    let line = format!("file_server {} 0", dir.display());
    let mut nsh = KillOnDrop(
        Command::new(crate::harness::nsh_bin())
            .args(["-c", &line])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(nsh.0.stdout.take().unwrap());
    let mut text = String::new();
    while !text.contains("Press CTRL-C to stop") {
        let mut l = String::new();
        if std::io::BufRead::read_line(&mut out, &mut l).unwrap() == 0 {
            break;
        }
        text.push_str(&l);
    }
    let port: u16 = text
        .split_once(" on port ")
        .and_then(|(_, rest)| rest.split_once("..."))
        .and_then(|(port, _)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the file server's first line:\n{text}"));
    assert_ne!(port, 0, "{text}");
    let copy = dir.join("Makefile_copy");
    coap_client(&[
        "-o",
        copy.to_str().unwrap(),
        &format!("coap://127.0.0.1:{port}/Makefile"),
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    let missing = Command::new("coap-client-notls")
        .arg(format!("coap://127.0.0.1:{port}/nope"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("4.04"),
        "{missing:?}"
    );
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(nsh.0.id().to_string())
        .status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = nsh.0.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{text}{rest}");
    assert!(text.contains(&format!("on port {port}...")), "{text}");
    assert!(rest.contains("<- GET /Makefile"), "{rest}");
    assert!(rest.contains("file server stopped"), "{rest}");
}

/// `file_server DIR PORT` serving a 200,000-byte file to libcoap's client:
/// each line names its block, a flood of them is summed up as nsh's other
/// repeated lines are, and one line says the transfer is complete.
#[test]
fn file_server_lines_name_blocks_are_summed_up_and_end_with_a_served_line() {
    const SIZE: usize = 200_000;
    let dir = std::env::temp_dir().join(format!("nsh-files-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..SIZE as u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("fw.bin"), &data).unwrap();
    let line = format!("file_server {} 0", dir.display());
    let nsh = crate::harness::LiveNsh::start(&["-c", &line]);
    let copy = dir.join("fw_copy.bin");
    coap_client(&[
        "-o",
        copy.to_str().unwrap(),
        &format!("coap://127.0.0.1:{}/fw.bin", nsh.port),
    ]);
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    // Its output to a pipe comes when it ends (as in the test above).
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(nsh.pid().to_string())
        .status();
    let (status, out, _) = nsh.finish(10);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{out}");
    let served: Vec<&str> = out.lines().filter(|l| l.starts_with("served ")).collect();
    assert_eq!(served.len(), 1, "{out}");
    assert!(
        served[0].starts_with("served fw.bin (200000 bytes, 196 blocks) to 127.0.0.1:"),
        "{out}"
    );
    let gets: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("<- GET /fw.bin"))
        .collect();
    let contents: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("-> Content"))
        .collect();
    assert!(!gets.is_empty() && !contents.is_empty(), "{out}");
    // The first GET may ask without a Block2 option (block 0 implied).
    assert!(
        gets.iter().filter(|l| !l.contains("(block ")).count() <= 1,
        "{out}"
    );
    assert!(contents.iter().all(|l| l.contains("(block ")), "{out}");
    // Every GET is either shown or counted in a summary line.
    let hidden: u64 = out
        .lines()
        .filter(|l| l.contains(" more `<- GET` lines not shown"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|n| n.replace(',', "").parse::<u64>().unwrap())
        .sum();
    assert_eq!(gets.len() as u64 + hidden, 196, "{out}");
    // 196 blocks over loopback take far less than the 20 s in which ten
    // lines a second would show them all.
    assert!(hidden > 0, "{out}");
}

/// A Bootstrap-Pack-Request crafted with coap-client, kept while
/// auto_bspack_error is off, and answered by `bootstrap_pack`.
#[test]
fn bootstrap_pack_answers_a_kept_request_with_senml_cbor() {
    let mut port = 0;
    let out = std::env::temp_dir().join(format!("nsh-bspack-{}.cbor", std::process::id()));
    let out_s = out.display().to_string();
    let client = std::sync::Mutex::new(None);
    let run = run_nsh(
        &[&script("bootstrap_pack.rhai")],
        Duration::from_secs(60),
        |line| {
            if let Some(p) = listening_port(line) {
                port = p;
            } else if line.contains("@@ask") {
                let uri = format!("coap://127.0.0.1:{port}/bspack?ep=packer");
                let o = out_s.clone();
                *client.lock().unwrap() = Some(std::thread::spawn(move || {
                    coap_client(&["-U", "-m", "get", "-A", "112", "-o", &o, &uri])
                }));
            }
        },
    );
    if let Some(h) = client.into_inner().unwrap() {
        h.join().expect("coap-client got its answer");
    }
    run.assert_ok();
    assert!(
        run.stdout.contains("Received Bootstrap Pack Request"),
        "{}",
        run.stdout
    );
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let registry = nsh::lwm2m::objects::Registry::builtin();
    let decoded = nsh::lwm2m::format::decode(112, &bytes, None, &registry).unwrap();
    let records = decoded.payload.records().unwrap();
    let paths: Vec<String> = records.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(
        paths,
        [
            "/0/1/0", "/0/1/1", "/0/1/2", "/0/1/10", "/1/1/0", "/1/1/1", "/1/1/6", "/1/1/7"
        ]
    );
}

/// Two free UDP ports, `p` and `p + 1` (coap-server-openssl serves DTLS on
/// the port after its plain one).
pub(crate) fn free_port_pair() -> u16 {
    loop {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// `connect` with DTLS arguments, then `connect` without them to another
/// device: the second is plain UDP, as `help connect` says, not a DTLS
/// handshake on the socket the first one opened (which used to fail and
/// leave commands going to the first device).
#[test]
fn a_plain_connect_after_a_dtls_connect_is_plain() {
    let dtls = free_port_pair();
    let _secure = KillOnDrop(
        Command::new("coap-server-openssl")
            .args([
                "-A",
                "127.0.0.1",
                "-p",
                &dtls.to_string(),
                "-k",
                "secretPSK",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("coap-server-openssl is missing: run `bash tests/setup.sh`"),
    );
    let plain = free_port_pair();
    let _plain = KillOnDrop(
        Command::new("coap-server-notls")
            .args(["-A", "127.0.0.1", "-p", &plain.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("coap-server-notls is missing: run `bash tests/setup.sh`"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let code = format!(
        r#"connect("127.0.0.1", {}, #{{psk_identity: "myid", psk_key: "secretPSK"}});
print("@@secure " + coap_get("/time").code);
connect("127.0.0.1", {plain});
let r = coap_get("/time");
print("@@plain " + r.code + " from " + r.peer);"#,
        dtls + 1
    );
    let run = run_nsh(&["-c", &code], Duration::from_secs(60), |_| {});
    run.assert_ok();
    assert!(run.stdout.contains("@@secure 2.05"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("@@plain 2.05 from 127.0.0.1:{plain}")),
        "{}",
        run.stdout
    );
}
