//! `nsh test DIR`: a directory of scripts, each run in a fresh shell with
//! its own port and its own client (the real wakatiwai peer, or a raw UDP
//! client), reported case by case and summed up; the client stopped after
//! each script.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nsh::coap::{Code, Message, Type, udp};

use crate::harness::{LiveNsh, peers_dir, run_nsh};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nsh-runner-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Three scripts: two passing cases, a failing one, a skipped one.
fn three_scripts(dir: &Path) -> (String, String, String) {
    let a = write(
        dir,
        "a_pass.rhai",
        r#"test("reads the manufacturer", || {
    assert_eq(read("/3/0/0").value, "nsh-test");
});
test("knows its endpoint", || {
    assert_eq(CLIENT.registration.endpoint, CLIENT.endpoint);
    assert_eq(CLIENT.port, PORT);
    assert_eq(CLIENT.uri, "coap://127.0.0.1:" + PORT);
});
"#,
    );
    let b = write(
        dir,
        "b_fail.rhai",
        r#"test("passes first", || { assert(true); });
test("reads the wrong serial", || {
    let r = read("/3/0/2");
    assert_eq(r.value, "NOPE");
});
"#,
    );
    let c = write(
        dir,
        "c_skip.rhai",
        r#"test("needs firmware", || { skip("no firmware image here"); });
test("battery", || { assert_eq(read("/3/0/9").value, 87); });
"#,
    );
    (a, b, c)
}

/// The wakatiwai peer as a `--client` command, with a marker argument (the
/// driver ignores it) to find its processes by.
fn waka_client(marker: &str) -> String {
    format!(
        "node {} 127.0.0.1 {{port}} {{endpoint}} {marker}",
        peers_dir().join("waka.js").display()
    )
}

/// Processes whose command line contains any of `needles`.
fn processes_with(needles: &[String]) -> Vec<String> {
    let out = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| needles.iter().any(|n| l.contains(n.as_str())))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_directory_runs_case_by_case_in_parallel_with_the_real_client_which_is_stopped_after_each_script()
 {
    let dir = scratch("waka");
    let (a, b, c) = three_scripts(&dir);
    let marker = format!("runner-mark-{}", std::process::id());
    let xml = dir.join("report.xml");
    let run = run_nsh(
        &[
            "test",
            &dir.display().to_string(),
            "--client",
            &waka_client(&marker),
            "--junit",
            &xml.display().to_string(),
            // In parallel: each script with its own port and client, its
            // lines printed together.
            "--jobs",
            "3",
        ],
        Duration::from_secs(120),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    for line in [
        "ok 1 - reads the manufacturer\nok 2 - knows its endpoint\n".to_string(),
        format!("ok - {a} (2 passed, "),
        "ok 1 - passes first\nnot ok 2 - reads the wrong serial\n".to_string(),
        format!(
            "  # {b}:4:5: assert_eq failed\n  #   left:  \"WAKA-0001\"\n  #   right: \"NOPE\"\n"
        ),
        format!("not ok - {b} (1 passed, 1 failed, "),
        "skip 1 - needs firmware # no firmware image here\nok 2 - battery\n".to_string(),
        format!("ok - {c} (1 passed, 1 skipped, "),
    ] {
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    assert!(out.ends_with("\n4 passed, 1 failed, 1 skipped\n"), "{out}");
    // The failed script's client output is shown.
    assert!(out.contains("  --- client output of "), "{out}");
    let report = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(report.matches("<testsuite ").count(), 3, "{report}");
    assert!(
        report.contains("<skipped message=\"no firmware image here\"/>"),
        "{report}"
    );
    assert!(
        report.contains("name=\"b_fail\" tests=\"2\" failures=\"1\""),
        "{report}"
    );
    // Each client had its own endpoint, and none is left running.
    let endpoints: Vec<String> = report
        .split("STARTED ep=")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(endpoints.len(), 3, "{report}");
    let mut unique = endpoints.clone();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{endpoints:?}");
    let mut needles: Vec<String> = endpoints.iter().map(|e| format!("-n {e} ")).collect();
    needles.push(marker);
    assert_eq!(processes_with(&needles), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn filter_runs_the_matching_cases_and_list_names_them_without_running() {
    let dir = scratch("filter");
    let (a, b, c) = three_scripts(&dir);
    let d = dir.display().to_string();
    let list = run_nsh(&["test", &d, "--list"], Duration::from_secs(30), |_| {});
    list.assert_ok();
    assert_eq!(
        list.stdout,
        format!(
            "{a}\n  reads the manufacturer\n  knows its endpoint\n{b}\n  passes first\n  reads the wrong serial\n{c}\n  needs firmware\n  battery\n"
        )
    );
    let list = run_nsh(
        &["test", &d, "--list", "--filter", "serial"],
        Duration::from_secs(30),
        |_| {},
    );
    assert_eq!(list.stdout, format!("{b}\n  reads the wrong serial\n"));
    let marker = format!("runner-filter-{}", std::process::id());
    let run = run_nsh(
        &[
            "test",
            &d,
            "--filter",
            "serial",
            "--client",
            &waka_client(&marker),
        ],
        Duration::from_secs(60),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    assert!(
        run.stdout
            .starts_with("not ok 1 - reads the wrong serial\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("passes first"), "{}", run.stdout);
    assert!(!run.stdout.contains(&a) && !run.stdout.contains(&c));
    assert!(
        run.stdout.ends_with("\n0 passed, 1 failed, 0 skipped\n"),
        "{}",
        run.stdout
    );
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn messages_left_unread_before_a_case_are_noted_and_not_taken_by_its_wait_for() {
    let dir = scratch("unread");
    let port_file = dir.join("port");
    let script = write(
        &dir,
        "unread.rhai",
        r#"test("waits while the device talks", || { sleep(2.0); });
test("starts with an empty inbox", || {
    let taken = false;
    try { wait_for("Update", 0.3); taken = true; } catch (e) { }
    assert(!taken, "an Update from before the case was taken");
});
"#,
    );
    // The client: writes nsh's port for the raw UDP client below and
    // stays, reading its stdin (which the runner keeps open).
    let client = format!("echo {{port}} > {}; cat", port_file.display());
    let device = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the client was not started");
            std::thread::sleep(Duration::from_millis(20));
        };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let server = ("127.0.0.1", port);
        let exchange = |m: &Message| {
            socket.send_to(&udp::encode(m), server).unwrap();
            let mut buf = [0u8; 1500];
            let (n, _) = socket.recv_from(&mut buf).expect("nsh answers");
            udp::decode(&buf[..n]).unwrap()
        };
        let mut register = Message::new(Type::Confirmable, Code::POST, 0x100);
        register.token = vec![0x01];
        register.set_uri("/rd?ep=raw-unread&lt=60");
        register.payload = b"</3/0>".to_vec();
        let location = exchange(&register).location_string();
        // The script starts once the Register is in; the Updates are sent
        // while its first case sleeps.
        std::thread::sleep(Duration::from_millis(700));
        for mid in [0x101u16, 0x102] {
            let mut update = Message::new(Type::Confirmable, Code::POST, mid);
            update.token = vec![mid as u8];
            update.set_uri(&location);
            assert_eq!(exchange(&update).code, Code::CHANGED);
        }
    });
    let run = run_nsh(
        &["test", &script, "--client", &client],
        Duration::from_secs(60),
        |_| {},
    );
    device.join().unwrap();
    run.assert_ok();
    assert_eq!(
        run.stdout,
        format!(
            "ok 1 - waits while the device talks\n# 2 messages unread before case 2: Update, Update\nok 2 - starts with an empty inbox\n{}",
            run.stdout
                .split_once("ok 2 - starts with an empty inbox\n")
                .map_or("", |(_, rest)| rest)
        )
    );
    assert!(run.stdout.contains(&format!("ok - {script} (2 passed, ")));
    assert!(run.stdout.ends_with("\n2 passed, 0 failed, 0 skipped\n"));
    assert_eq!(
        processes_with(&[dir.join("port").display().to_string()]),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_script_that_runs_too_long_fails_and_fail_fast_starts_no_other() {
    let dir = scratch("timeout");
    let slow = write(&dir, "a_slow.rhai", "test(\"slow\", || { sleep(30); });\n");
    let skipped = write(
        &dir,
        "b_skip.rhai",
        "skip(\"not today\");\nfail(\"unreached\");\n",
    );
    let d = dir.display().to_string();
    let run = run_nsh(
        &["test", &d, "--timeout", "0.5"],
        Duration::from_secs(20),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "  # {slow}: timed out after 0.5 s (--timeout) in case 1 (slow)\n"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("skip - {skipped} # not today\n")),
        "{}",
        run.stdout
    );
    let run = run_nsh(
        &["test", &d, "--timeout", "0.5", "--fail-fast"],
        Duration::from_secs(20),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    // The script not started is reported as such.
    assert!(
        run.stdout.ends_with(&format!(
            "skip - {skipped} # not run: --fail-fast after {slow} failed\n# 1 script not run (--fail-fast)\n0 passed, 1 failed, 1 skipped\n"
        )),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nsh test --pcap DIR`: one pcapng per script, which tshark reads back
/// (the GET each script sent to a raw UDP device, with its path and token).
#[test]
fn pcap_writes_one_capture_per_script() {
    let dir = scratch("pcap");
    let device = UdpSocket::bind("127.0.0.1:0").unwrap();
    device
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = device.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..2 {
            let (n, from) = device.recv_from(&mut buf).unwrap();
            let req = udp::decode(&buf[..n]).unwrap();
            let mut r = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
            r.token = req.token.clone();
            device.send_to(&udp::encode(&r), from).unwrap();
        }
    });
    std::fs::create_dir_all(dir.join("cases")).unwrap();
    for (name, path, token) in [("a.rhai", "/3/0", "a1"), ("b.rhai", "/5/0", "b2")] {
        write(
            &dir.join("cases"),
            name,
            &format!(
                "connect(\"127.0.0.1\", {port});\ntest(\"get\", || {{ coap_get(\"{path}\", #{{token: \"\\\\x{token}\"}}); }});\n"
            ),
        );
    }
    let out = dir.join("captures");
    let cases = dir.join("cases");
    let run = run_nsh(
        &[
            "test",
            &cases.display().to_string(),
            "--pcap",
            &out.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    answer.join().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}{}", run.stdout, run.stderr);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for (file, path, token) in [(&files[0], "3,0", "a1"), (&files[1], "5,0", "b2")] {
        let shown = std::process::Command::new("tshark")
            .arg("-r")
            .arg(out.join(file))
            .args(["-d", &format!("udp.port=={port},coap")])
            .args(["-Y", "coap", "-T", "fields", "-E", "separator=|"])
            .args([
                "-e",
                "coap.code",
                "-e",
                "coap.opt.uri_path",
                "-e",
                "coap.token",
            ])
            .output()
            .expect("tshark (bash tests/setup.sh installs it)");
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(
            text.contains(&format!("1|{path}|{token}")),
            "{file}:\n{text}"
        );
        assert!(text.contains(&format!("69||{token}")), "{file}:\n{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `before_each`/`after_each` run around every case (`after_each` after a
/// failed body too; a failing `before_each` fails the case without running
/// it), and an observation a case leaves active on the real wakatiwai
/// client is reported on the case and cancelled (the Cancel is sent).
#[test]
fn before_and_after_each_run_around_cases_and_a_left_observation_is_cancelled() {
    let dir = scratch("each");
    let s = write(
        &dir,
        "each.rhai",
        r#"let ran = [];
before_each(|| { print("BEFORE"); });
after_each(|| { print("AFTER"); });
test("observes the battery", || {
    observe("/3/0/9");
});
test("fails in its body", || {
    assert_eq(read("/3/0/2").value, "NOPE");
});
after_each(|| { print("AFTER2"); assert(false, "after_each refused"); });
test("passes its body only", || { print("BODY3"); });
before_each(|| { throw "no set-up"; });
test("never runs its body", || { print("BODY4"); });
"#,
    );
    let json = dir.join("run.jsonl");
    let run = run_nsh(
        &[
            "test",
            &s,
            "--client",
            &waka_client("each"),
            "--json",
            &json.display().to_string(),
            "-v",
        ],
        Duration::from_secs(120),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    for line in [
        "ok 1 - observes the battery\n  # left the observation of /3/0/9 active: cancelled\n",
        "not ok 2 - fails in its body\n",
        "not ok 3 - passes its body only\n",
        "after_each refused",
        "not ok 4 - never runs its body\n",
        "no set-up",
        "1 passed, 3 failed",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    // The script's output: the blocks in order, body 4 never ran.
    let printed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("  | "))
        .filter(|l| ["BEFORE", "AFTER", "AFTER2", "BODY3", "BODY4"].contains(l))
        .collect();
    assert_eq!(
        printed,
        [
            "BEFORE", "AFTER", "BEFORE", "AFTER", "BEFORE", "BODY3", "AFTER2", "AFTER2"
        ],
        "{out}"
    );
    // The cancel went to the device, in case 1, and it answered.
    let text = std::fs::read_to_string(&json).unwrap();
    let cancel = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["summary"] == "Cancel Observation /3/0/9")
        .unwrap_or_else(|| panic!("no cancel in\n{text}"));
    assert_eq!(cancel["direction"], "sent");
    assert_eq!(cancel["case"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The security options apply to every script's server: libcoap's
/// coap-client registers through `{uri}` over CoAP over TCP, DTLS (PSK) and
/// TLS over TCP, and the wakatiwai client registers over DTLS and is read.
#[test]
fn security_options_make_every_scripts_server_listen_with_them() {
    let dir = scratch("secure");
    let s = write(
        &dir,
        "registered.rhai",
        r#"test("registered through its uri", || {
    assert_eq(CLIENT.registration.endpoint, CLIENT.endpoint);
    print("URI " + CLIENT.uri);
});
"#,
    );
    let psk = ["-i", "user", "-k", "password"];
    for (flags, tool, scheme) in [
        (&["-t"][..], "coap-client-notls", "coap+tcp"),
        (&psk[..], "coap-client-openssl -u user -k password", "coaps"),
        (
            &["-t", "-i", "user", "-k", "password"][..],
            "coap-client-openssl -u user -k password",
            "coaps+tcp",
        ),
    ] {
        let client = format!("{tool} -m post -e '</3/0>' '{{uri}}/rd?ep={{endpoint}}&lt=60'");
        let mut args = vec!["test", s.as_str(), "--client", client.as_str(), "-v"];
        args.extend_from_slice(flags);
        let run = run_nsh(&args, Duration::from_secs(60), |_| {});
        let out = &run.stdout;
        assert_eq!(run.status.code(), Some(0), "{scheme}: {out}{}", run.stderr);
        assert!(out.contains("ok 1 - registered through its uri"), "{out}");
        assert!(out.contains(&format!("URI {scheme}://127.0.0.1:")), "{out}");
    }
    let waka = format!(
        "PSK_ID=user PSK_KEY_HEX=70617373776f7264 {}",
        waka_client("secure")
    );
    let read = write(
        &dir,
        "read.rhai",
        r#"test("reads over DTLS", || { assert_eq(read("/3/0/0").value, "nsh-test"); });
"#,
    );
    let run = run_nsh(
        &[
            "test", &read, "--client", &waka, "-i", "user", "-k", "password", "-v",
        ],
        Duration::from_secs(120),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("DTLS session with 127.0.0.1:"),
        "{}",
        run.stdout
    );
    // An identity without a key: one line, before any script runs.
    let run = run_nsh(
        &["test", &read, "-i", "user"],
        Duration::from_secs(30),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.starts_with("nsh test: ") && run.stderr.contains("key"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that only defines functions is a library for `import`: found in a
/// directory it is not run (nor counted as a passed script); named on its
/// own it runs as asked.
#[test]
fn a_library_of_functions_in_a_directory_is_not_counted_as_a_script() {
    let dir = scratch("library");
    let cases = write(
        &dir,
        "a_cases.rhai",
        "test(\"adds\", || { assert_eq(1 + 1, 2); });\n",
    );
    let lib = write(
        &dir,
        "b_helpers.rhai",
        "// Helpers.\nfn twice(x) {\n    x * 2\n}\n\nfn thrice(x) { x * 3 }\n",
    );
    let plain = write(&dir, "c_plain.rhai", "fn f() { 1 }\nprint(f());\n");
    let d = dir.display().to_string();
    let junit = dir.join("out").join("junit.xml");
    let run = run_nsh(
        &[
            "test",
            &d,
            "--jobs",
            "1",
            "--junit",
            &junit.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    assert!(
        run.stdout.starts_with(&format!(
            "# {lib}: defines functions only (a library to import), not run\n"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("ok - {cases} (1 passed")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("ok - {plain} (1 passed")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&format!("ok - {lib}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("\n2 passed, 0 failed, 0 skipped\n"),
        "{}",
        run.stdout
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(!xml.contains("b_helpers"), "{xml}");
    assert!(xml.contains("a_cases") && xml.contains("c_plain"), "{xml}");

    let list = run_nsh(&["test", &d, "--list"], Duration::from_secs(30), |_| {});
    list.assert_ok();
    assert_eq!(list.stdout, format!("{cases}\n  adds\n{plain}\n"));

    let alone = run_nsh(&["test", &lib], Duration::from_secs(30), |_| {});
    alone.assert_ok();
    assert!(
        alone.stdout.ends_with("\n1 passed, 0 failed, 0 skipped\n"),
        "{}",
        alone.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ets_helpers_are_not_listed_as_a_script_of_stdlib_ets() {
    let list = run_nsh(
        &["test", "stdlib/ets", "--list"],
        Duration::from_secs(30),
        |_| {},
    );
    list.assert_ok();
    assert!(
        list.stdout.contains("stdlib/ets/100_registration.rhai\n"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains("common.rhai"), "{}", list.stdout);
}

#[test]
fn nothing_to_run_is_an_error_not_a_pass() {
    // A CI job pointed at the wrong folder, or a filter that matches
    // nothing, must not pass with "0 passed, 0 failed".
    let dir = scratch("empty");
    let run = run_nsh(
        &["test", dir.to_str().unwrap()],
        Duration::from_secs(20),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stdout);
    assert!(
        run.stderr.contains("nsh test: no script to run under "),
        "{}",
        run.stderr
    );
    write(&dir, "a.rhai", "test(\"one\", || {});\n");
    let run = run_nsh(
        &["test", dir.to_str().unwrap(), "--filter", "nosuchcase"],
        Duration::from_secs(20),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("nsh test: no script or case matches --filter `nosuchcase`"),
        "{}",
        run.stderr
    );
}

/// Scripts of the same name in different folders get different JUnit
/// testsuites: named by their path under the directory given to `nsh
/// test` (`x/read`), with the classname `x.read`.
#[test]
fn junit_names_each_script_by_its_path_under_the_directory_given() {
    let dir = scratch("junit-names");
    for sub in ["x", "y"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        write(
            &dir.join(sub),
            "read.rhai",
            &format!("test(\"reads {sub}\", || {{ assert(true); }});\n"),
        );
    }
    write(&dir, "top.rhai", "test(\"top\", || { assert(true); });\n");
    let xml = dir.join("junit.xml");
    let run = run_nsh(
        &[
            "test",
            &dir.display().to_string(),
            "--junit",
            &xml.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    let report = std::fs::read_to_string(&xml).unwrap();
    for (suite, class, case) in [
        ("top", "top", "top"),
        ("x/read", "x.read", "reads x"),
        ("y/read", "y.read", "reads y"),
    ] {
        assert!(
            report.contains(&format!("<testsuite name=\"{suite}\" tests=\"1\"")),
            "no suite {suite} in\n{report}"
        );
        assert!(
            report.contains(&format!("<testcase classname=\"{class}\" name=\"{case}\"")),
            "no case {class}/{case} in\n{report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM (what `timeout` and a cancelled CI job send) and SIGHUP stop a
/// run as Ctrl-C does: the case running fails as interrupted, the client's
/// process group is stopped, the reports of what ran are written, and nsh
/// exits with 128 + the signal's number.
#[test]
fn sigterm_and_sighup_stop_the_run_stop_the_client_and_write_the_reports() {
    let dir = scratch("sigterm");
    write(
        &dir,
        "a_hang.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\ntest(\"hangs\", || { sleep(120); });\n",
    );
    let b = write(&dir, "b_later.rhai", "test(\"never runs\", || {});\n");
    let d = dir.display().to_string();
    for (sig, code) in [("TERM", 143), ("HUP", 129)] {
        let marker = format!("runner-sig{sig}-{}", std::process::id());
        let xml = dir.join(format!("{sig}.xml"));
        let json = dir.join(format!("{sig}.jsonl"));
        let mut nsh = LiveNsh::piped(&[
            "test",
            &d,
            "--client",
            &waka_client(&marker),
            "--junit",
            &xml.display().to_string(),
            "--json",
            &json.display().to_string(),
        ]);
        nsh.wait("ok 1 - reads", 60);
        // The client runs while case 2 sleeps.
        assert!(!processes_with(std::slice::from_ref(&marker)).is_empty());
        let sent = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(nsh.pid().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let (status, out, err) = nsh.finish(30);
        assert_eq!(status.code(), Some(code), "SIG{sig}: {status}\n{out}{err}");
        assert!(
            out.contains(&format!("not ok 2 - hangs\n  # interrupted by SIG{sig}\n")),
            "{out}"
        );
        // The script not started is listed, its case by name.
        assert!(
            out.ends_with(&format!(
                "\nskip 1 - never runs # not run: interrupted by SIG{sig}\nskip - {b} # not run: interrupted by SIG{sig}\n# 1 script not run (interrupted by SIG{sig})\n1 passed, 1 failed, 1 skipped\n"
            )),
            "{out}"
        );
        let report = std::fs::read_to_string(&xml).unwrap_or_default();
        assert!(
            report.contains(&format!("<failure message=\"interrupted by SIG{sig}\"")),
            "{report}"
        );
        assert!(
            report.contains(&format!(
                "<testsuite name=\"b_later\" tests=\"1\" failures=\"0\" skipped=\"1\" time=\"0.000\">\n    <testcase classname=\"b_later\" name=\"never runs\" time=\"0.000\">\n      <skipped message=\"not run: interrupted by SIG{sig}\"/>"
            )),
            "{report}"
        );
        let lines = std::fs::read_to_string(&json).unwrap_or_default();
        assert!(
            lines.contains("\"name\":\"hangs\",\"status\":\"failed\""),
            "{lines}"
        );
        assert!(
            lines.contains(&format!(
                "\"name\":\"never runs\",\"status\":\"skipped\",\"message\":\"not run: interrupted by SIG{sig}\""
            )),
            "{lines}"
        );
        assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--timeout`: the case running when it fires fails under its own name
/// (once: the script's line says it timed out without counting a second
/// failure), the interrupted command says what interrupted it, whether
/// the case waits in a command or spins in Rhai.
#[test]
fn a_timeout_fails_the_case_that_was_running_and_says_so() {
    let dir = scratch("timeout-case");
    let a = write(
        &dir,
        "a_sleeps.rhai",
        "test(\"first\", || { assert(true); });\ntest(\"hangs\", || { sleep(30); });\ntest(\"after\", || { assert(true); });\n",
    );
    let b = write(
        &dir,
        "b_spins.rhai",
        "test(\"spins\", || { let i = 0; loop { i += 1; } });\n",
    );
    let xml = dir.join("junit.xml");
    let run = run_nsh(
        &[
            "test",
            &dir.display().to_string(),
            "--timeout",
            "1",
            "--junit",
            &xml.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    for line in [
        format!(
            "ok 1 - first\nnot ok 2 - hangs\n  # timed out after 1 s (--timeout)\n  # {a}:2:20: sleep: interrupted by the --timeout\n"
        ),
        format!("not ok - {a} (1 passed, 1 failed, "),
        format!("  # {a}: timed out after 1 s (--timeout) in case 2 (hangs)\n"),
        "not ok 1 - spins\n  # timed out after 1 s (--timeout)\n".to_string(),
        format!("not ok - {b} (0 passed, 1 failed, "),
    ] {
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    // The case after it is listed, as not run.
    assert!(
        out.contains("skip 3 - after # not run: case 2 (hangs) timed out after 1 s (--timeout)\n"),
        "{out}"
    );
    assert!(out.ends_with("\n1 passed, 2 failed, 1 skipped\n"), "{out}");
    let report = std::fs::read_to_string(&xml).unwrap();
    assert!(
        report.contains("tests=\"3\" failures=\"1\" skipped=\"1\"")
            && report.contains("tests=\"1\" failures=\"1\""),
        "{report}"
    );
    assert_eq!(
        report
            .matches("<failure message=\"timed out after 1 s (--timeout)\"")
            .count(),
        2,
        "{report}"
    );
    // No made-up case named after the file.
    assert!(!report.contains(&format!("name=\"{a}\"")), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A device that dies after it registered: the command waiting for it is
/// interrupted at once (not after the CoAP timeout, 93 s) and the case
/// says the client exited, with its status.
#[test]
fn a_client_that_exits_during_the_script_fails_the_waiting_case_at_once() {
    let dir = scratch("client-exits");
    let die = dir.join("die");
    let s = write(
        &dir,
        "dies.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\ntest(\"reads until the device dies\", || { loop { read(\"/3/0/0\"); } });\n",
    );
    // The device runs until the file `die` appears; then it is killed (no
    // De-register) and the client command exits with status 3.
    let client = format!(
        "{} & while [ ! -e {die} ]; do sleep 0.05; done; kill -9 $!; exit 3",
        waka_client("runner-dies"),
        die = die.display()
    );
    let run = run_nsh(
        &["test", &s, "--client", &client],
        Duration::from_secs(60),
        |line| {
            if line == "ok 1 - reads" {
                std::fs::write(&die, "").unwrap();
            }
        },
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    assert!(
        out.contains(
            "not ok 2 - reads until the device dies\n  # the client exited (exit status: 3) during the script, at "
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  # {s}:2:49: read: interrupted because the client exited (exit status: 3)\n"
        )),
        "{out}"
    );
    assert!(out.ends_with("\n1 passed, 1 failed, 0 skipped\n"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's own script (`scripts/read_device.rhai`, which begins with
/// `reg::await_registration`) runs under `nsh test` as it does alone: the
/// Register the runner waited for is the one it gets, inside a case too.
#[test]
fn await_registration_gets_the_register_the_runner_waited_for() {
    let dir = scratch("await-reg");
    let case = write(
        &dir,
        "in_a_case.rhai",
        r#"import "stdlib/registration" as reg;
test("registered", || {
    let r = reg::await_registration(5);
    assert_eq(r.kind, "Register");
    assert_eq(r.endpoint, CLIENT.endpoint);
});
"#,
    );
    let marker = format!("runner-await-{}", std::process::id());
    let readme = crate::harness::repo().join("scripts/read_device.rhai");
    let run = run_nsh(
        &[
            "test",
            &readme.display().to_string(),
            &case,
            "-v",
            "--client",
            &waka_client(&marker),
        ],
        Duration::from_secs(120),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ok 1 - registered"), "{}", run.stdout);
    assert!(run.stdout.contains("manufacturer: "), "{}", run.stdout);
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second device that registers during a script does not take the
/// commands over: they stay with the device the runner started (it used
/// to become the current client, silently).
#[test]
fn a_second_device_does_not_take_over_the_commands() {
    let dir = scratch("intruder");
    let script = write(
        &dir,
        "stays.rhai",
        r#"test("reads the device under test", || {
    let others = wait_for(#{kind: "Register", endpoint: "intruder"}, 20);
    let r = read("/3/0/0");
    assert_eq(r.peer, CLIENT.registration.peer);
});
"#,
    );
    let marker = format!("runner-intruder-{}", std::process::id());
    let waka = peers_dir().join("waka.js").display().to_string();
    let client = format!(
        "node {waka} 127.0.0.1 {{port}} {{endpoint}} {marker} & sleep 1; exec node {waka} 127.0.0.1 {{port}} intruder {marker}"
    );
    let run = run_nsh(
        &["test", &script, "--client", &client],
        Duration::from_secs(120),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("ok 1 - reads the device under test"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A report path that cannot be written is refused before any script runs
/// (it used to fail only after the whole run); missing folders are made.
#[test]
fn report_paths_are_checked_before_the_run() {
    let dir = scratch("report-paths");
    let script = write(&dir, "quick.rhai", "test(\"t\", || { assert(true); });\n");
    let taken = dir.display().to_string();
    for (flag, value) in [
        ("--junit", &taken),
        ("--json", &taken),
        ("--report", &script),
    ] {
        let run = run_nsh(
            &["test", &script, flag, value],
            Duration::from_secs(30),
            |_| {},
        );
        assert_eq!(
            run.status.code(),
            Some(2),
            "{flag}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("nsh test: {flag}: ")),
            "{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains("ok 1 - t"),
            "{flag}: a script ran: {}",
            run.stdout
        );
    }
    let junit = dir.join("made/for/it/junit.xml");
    let run = run_nsh(
        &["test", &script, "--junit", &junit.display().to_string()],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    assert!(junit.exists());
    // Script mode makes missing folders too, as `nsh test` does.
    let junit = dir.join("script/mode/junit.xml");
    let run = run_nsh(
        &["--junit", &junit.display().to_string(), &script],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    assert!(junit.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Cases named at run time are listed as such and found by `--filter`
/// (a filter naming one used to be "no script or case matches").
#[test]
fn cases_named_at_run_time_are_listed_and_filtered() {
    let dir = scratch("made-names");
    write(
        &dir,
        "made.rhai",
        "const N = \"constant named\";\n\
         test(\"reads \" + \"/3/0/1\", || { assert(true); });\n\
         test(N, || { assert(true); });\n\
         test(\"plain\", || { assert(true); });\n",
    );
    let d = dir.display().to_string();
    let list = run_nsh(&["test", &d, "--list"], Duration::from_secs(30), |_| {});
    list.assert_ok();
    assert!(
        list.stdout.contains("  reads … (named when it runs)\n"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("  plain\n"), "{}", list.stdout);
    for filter in ["reads /3/0/1", "constant"] {
        let run = run_nsh(
            &["test", &d, "--filter", filter],
            Duration::from_secs(30),
            |_| {},
        );
        assert_eq!(
            run.status.code(),
            Some(0),
            "{filter}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.contains("1 passed, 0 failed"),
            "{filter}: {}",
            run.stdout
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JUnit cases of a report as junitparser reads them:
/// `suite|result|name|message` per line.
const JUNIT_CASES: &str = r#"
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        r = case.result[0] if case.result else None
        print(suite.name, type(r).__name__ if r is not None else 'passed', case.name, r.message if r is not None else '', sep='|')
"#;

/// A `--timeout` in case 2 stops the script: the cases written after it are
/// listed by name in every report, skipped as not run because of it — the
/// console (case lines printed live, and together with `--jobs 2`), JUnit
/// (read by junitparser), the JSON lines and the HTML report.
#[test]
fn cases_after_a_timeout_are_listed_by_name_as_not_run() {
    let dir = scratch("timeout-not-run");
    let a = write(
        &dir,
        "a_hangs.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\n\
         test(\"hangs\", || { sleep(30); });\n\
         test(\"after\", || { read(\"/3/0/2\"); });\n\
         // test(\"commented out\", || {});\n\
         test(\"reads \" + \"/3/0/9\", || { read(\"/3/0/9\"); });\n",
    );
    let why = "not run: case 2 (hangs) timed out after 2 s (--timeout)";
    for jobs in ["1", "2"] {
        let xml = dir.join(format!("junit-{jobs}.xml"));
        let json = dir.join(format!("lines-{jobs}.jsonl"));
        let html = dir.join(format!("html-{jobs}"));
        let marker = format!("runner-notrun-{jobs}-{}", std::process::id());
        let run = run_nsh(
            &[
                "test",
                &a,
                "--client",
                &waka_client(&marker),
                "--timeout",
                "2",
                "--jobs",
                jobs,
                "--junit",
                &xml.display().to_string(),
                "--json",
                &json.display().to_string(),
                "--report",
                &html.display().to_string(),
            ],
            Duration::from_secs(60),
            |_| {},
        );
        let out = &run.stdout;
        assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
        for line in [
            "ok 1 - reads\nnot ok 2 - hangs\n  # timed out after 2 s (--timeout)\n".to_string(),
            format!("skip 3 - after # {why}\nskip 4 - reads … (named when it runs) # {why}\n"),
            format!("not ok - {a} (1 passed, 1 failed, 2 skipped, "),
            format!("  # {a}: timed out after 2 s (--timeout) in case 2 (hangs)\n"),
        ] {
            assert!(
                out.contains(&line),
                "--jobs {jobs}: missing {line:?} in\n{out}"
            );
        }
        assert!(!out.contains("commented out"), "{out}");
        assert!(out.ends_with("\n1 passed, 1 failed, 2 skipped\n"), "{out}");

        let cases = crate::report::python(JUNIT_CASES, &xml);
        assert_eq!(
            cases,
            format!(
                "a_hangs|passed|reads|\n\
                 a_hangs|Failure|hangs|timed out after 2 s (--timeout)\n\
                 a_hangs|Skipped|after|{why}\n\
                 a_hangs|Skipped|reads … (named when it runs)|{why}\n"
            ),
            "--jobs {jobs}"
        );
        let lines = std::fs::read_to_string(&json).unwrap();
        let results: Vec<(u64, String, String, String)> = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["type"] == "case")
            .map(|v| {
                (
                    v["case"].as_u64().unwrap(),
                    v["name"].as_str().unwrap().to_string(),
                    v["status"].as_str().unwrap().to_string(),
                    v["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(results.len(), 4, "{lines}");
        assert_eq!(
            results[2],
            (3, "after".into(), "skipped".into(), why.to_string())
        );
        assert_eq!(results[3].1, "reads … (named when it runs)");
        let page = std::fs::read_to_string(html.join("index.html")).unwrap();
        assert!(
            page.contains(
                "<td>3</td><td><a href=\"#c-0-3\">after</a></td><td class=\"status\">skipped</td>"
            ),
            "{page}"
        );
        assert!(page.contains(&format!("skipped: {why}")), "{page}");
        assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM stops the run and gives the client `--grace` to exit; a second
/// signal meanwhile (SIGINT: Ctrl-C pressed again) kills the client's
/// process group at once, and the reports are written then, with the exit
/// status of the first signal. The client (wakatiwai under a shell that
/// ignores SIGTERM, as a hung device would) would otherwise hold the run
/// for the whole minute of grace.
#[test]
fn a_second_signal_during_the_grace_period_kills_the_client_at_once() {
    let dir = scratch("second-signal");
    write(
        &dir,
        "a_hang.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\ntest(\"hangs\", || { sleep(120); });\ntest(\"after\", || {});\n",
    );
    let marker = format!("runner-second-{}", std::process::id());
    // The shell (and its `sleep`) ignore SIGTERM; wakatiwai de-registers
    // on it. The shell ends by itself after 90 s.
    let client = format!("trap '' TERM; {} & sleep 90", waka_client(&marker));
    let xml = dir.join("junit.xml");
    let mut nsh = LiveNsh::piped(&[
        "test",
        &dir.display().to_string(),
        "--client",
        &client,
        "--grace",
        "60",
        "--junit",
        &xml.display().to_string(),
    ]);
    nsh.wait("ok 1 - reads", 60);
    let pid = nsh.pid().to_string();
    let kill = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(&pid)
            .status()
            .unwrap();
        assert!(sent.success());
    };
    kill("TERM");
    // The case ends, then the client is being stopped.
    nsh.wait("not ok 2 - hangs", 10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!processes_with(std::slice::from_ref(&marker)).is_empty());
    let again = Instant::now();
    kill("INT");
    let (status, out, err) = nsh.finish(20);
    assert!(
        again.elapsed() < Duration::from_secs(5),
        "took {:?} after the second signal\n{out}{err}",
        again.elapsed()
    );
    assert_eq!(status.code(), Some(143), "{status}\n{out}{err}");
    assert!(
        err.contains("nsh test: second signal (SIGINT): killing the client now"),
        "{err}"
    );
    assert!(out.ends_with("\n1 passed, 1 failed, 1 skipped\n"), "{out}");
    let report = std::fs::read_to_string(&xml).unwrap_or_default();
    assert!(
        report.contains("<failure message=\"interrupted by SIGTERM\""),
        "{report}"
    );
    assert!(
        report.contains("<skipped message=\"not run: case 2 (hangs) interrupted by SIGTERM\"/>"),
        "{report}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that leaves a process outside its process group (a daemon,
/// `setsid`) holding its output open: the run does not wait for that
/// process to end; the client's output says it was cut there.
#[test]
fn a_process_the_client_left_outside_its_group_does_not_hold_the_run() {
    let dir = scratch("setsid");
    let s = write(
        &dir,
        "reads.rhai",
        "test(\"reads\", || { assert_eq(read(\"/3/0/0\").value, \"nsh-test\"); });\n",
    );
    let marker = format!("runner-setsid-{}", std::process::id());
    // The daemon ends by itself after 30 s.
    let client = format!("setsid sleep 30 & {}", waka_client(&marker));
    let started = Instant::now();
    let run = run_nsh(
        &["test", &s, "--client", &client, "-v"],
        Duration::from_secs(60),
        |_| {},
    );
    let took = started.elapsed();
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(0), "{out}{}", run.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}\n{out}");
    assert!(out.contains("ok 1 - reads\n"), "{out}");
    assert!(
        out.contains("  | [nsh: the client's output is cut here: a process it started outside its process group still holds it open]\n"),
        "{out}"
    );
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The case objects of a JSON lines report, in file order: (script, case
/// number, name, status, message, time).
fn json_cases(file: &Path) -> Vec<(String, u64, String, String, String, f64)> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "case")
        .map(|v| {
            (
                v["script"].as_str().unwrap().to_string(),
                v["case"].as_u64().unwrap(),
                v["name"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap_or_default().to_string(),
                v["time"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// A `test(…)` inside another is refused with an error that says where:
/// the case around it fails with it, and every report numbers and names
/// the same cases.
#[test]
fn a_case_inside_a_case_is_refused_and_fails_the_case_around_it() {
    let dir = scratch("nested");
    let a = write(
        &dir,
        "nested.rhai",
        "test(\"first\", || { assert(true); });\n\
         test(\"nested test\", || { test(\"inner\", || { assert(false); }); });\n\
         test(\"last\", || { assert(true); });\n",
    );
    let xml = dir.join("junit.xml");
    let json = dir.join("lines.jsonl");
    let run = run_nsh(
        &[
            "test",
            &a,
            "--junit",
            &xml.display().to_string(),
            "--json",
            &json.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    let refused = format!(
        "not ok 2 - nested test\n  # {a}:2:26: test(\"inner\"): a case cannot run inside another (case 2, nested test): write it after that one\nok 3 - last\n"
    );
    assert!(out.starts_with("ok 1 - first\n"), "{out}");
    assert!(out.contains(&refused), "missing {refused:?} in\n{out}");
    assert!(!out.contains("- inner"), "{out}");
    assert!(out.ends_with("\n2 passed, 1 failed, 0 skipped\n"), "{out}");
    let cases = crate::report::python(JUNIT_CASES, &xml);
    assert_eq!(
        cases,
        format!(
            "nested|passed|first|\n\
             nested|Failure|nested test|{a}:2:26: test(\"inner\"): a case cannot run inside another (case 2, nested test): write it after that one\n\
             nested|passed|last|\n"
        )
    );
    let lines: Vec<(u64, String, String)> = json_cases(&json)
        .into_iter()
        .map(|(_, n, name, status, ..)| (n, name, status))
        .collect();
    assert_eq!(
        lines,
        [
            (1, "first".into(), "passed".into()),
            (2, "nested test".into(), "failed".into()),
            (3, "last".into(), "passed".into())
        ]
    );
    // Listed alike: the inner call is not a case.
    let list = run_nsh(&["test", &a, "--list"], Duration::from_secs(30), |_| {});
    assert_eq!(
        list.stdout,
        format!("{a}\n  first\n  nested test\n  last\n"),
        "{}",
        list.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `exit(0)` in the middle of a script ends it there, passed: the cases
/// written after it are listed as not run, saying where it exited, in
/// every report; `exit(3)` fails it with its status.
#[test]
fn the_cases_after_an_exit_are_listed_as_not_run() {
    let dir = scratch("exit");
    let a = write(
        &dir,
        "a_exit0.rhai",
        "test(\"a\", || { assert(true); });\nexit(0);\ntest(\"b\", || { assert(true); });\n",
    );
    let b = write(
        &dir,
        "b_exit3.rhai",
        "test(\"c\", || { assert(true); });\nexit(3);\ntest(\"d\", || { assert(true); });\n",
    );
    // In a case: the case ran.
    let c = write(
        &dir,
        "c_exit_in_case.rhai",
        "test(\"e\", || { exit(0); });\ntest(\"f\", || { assert(true); });\n",
    );
    let xml = dir.join("junit.xml");
    let json = dir.join("lines.jsonl");
    let run = run_nsh(
        &[
            "test",
            &dir.display().to_string(),
            "--junit",
            &xml.display().to_string(),
            "--json",
            &json.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    assert!(
        out.contains(&format!(
            "ok 1 - e\nskip 2 - f # not run: the script ended with exit(0) at {c}:1:16 in case `e`\nok - {c} (1 passed, 1 skipped, "
        )),
        "{out}"
    );
    let exited = format!("not run: the script ended with exit(0) at {a}:2:1");
    for line in [
        format!("ok 1 - a\nskip 2 - b # {exited}\nok - {a} (1 passed, 1 skipped, "),
        format!(
            "ok 1 - c\nskip 2 - d # not run: the script failed: {b}:2:1: exit(3)\nnot ok - {b} (1 passed, 1 failed, 1 skipped, "
        ),
    ] {
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    assert!(out.ends_with("\n3 passed, 1 failed, 3 skipped\n"), "{out}");
    let cases = crate::report::python(JUNIT_CASES, &xml);
    assert!(
        cases.starts_with(&format!("a_exit0|passed|a|\na_exit0|Skipped|b|{exited}\n")),
        "{cases}"
    );
    let lines: Vec<(String, String, String)> = json_cases(&json)
        .into_iter()
        .map(|(_, _, name, status, message, _)| (name, status, message))
        .collect();
    assert_eq!(lines[1], ("b".into(), "skipped".into(), exited.clone()));
    // Run alone, the script exits with its status.
    let alone = run_nsh(&[&b], Duration::from_secs(30), |_| {});
    assert_eq!(
        alone.status.code(),
        Some(3),
        "{}{}",
        alone.stdout,
        alone.stderr
    );
    assert!(
        alone.stderr.contains(&format!("{b}:2:1: exit(3)")),
        "{}",
        alone.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A script that does not compile fails at once with FILE:LINE:COL, before
/// its client is started (the client command would leave a file behind),
/// and its cases are listed as not run.
#[test]
fn a_syntax_error_fails_the_script_before_its_client_starts() {
    let dir = scratch("syntax");
    let a = write(
        &dir,
        "broken.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\ntest(\"never\", || { assert(true); \n",
    );
    let started_flag = dir.join("client-started");
    let marker = format!("runner-syntax-{}", std::process::id());
    let client = format!(
        "touch {} && {}",
        started_flag.display(),
        waka_client(&marker)
    );
    let started = Instant::now();
    let run = run_nsh(
        &["test", &a, "--client", &client, "--register-timeout", "20"],
        Duration::from_secs(60),
        |_| {},
    );
    let took = started.elapsed();
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    let error = format!("{a}:3:1: syntax error: Expecting '}}' to terminate this block");
    assert!(
        out.contains(&format!(
            "skip 1 - reads # not run: the script failed: {error}\nskip 2 - never # not run: the script failed: {error}\nnot ok - {a} (0 passed, 1 failed, 2 skipped, "
        )),
        "{out}"
    );
    assert!(out.contains(&format!("  # {error}\n")), "{out}");
    assert!(!started_flag.exists(), "the client was started\n{out}");
    assert!(took < Duration::from_secs(5), "took {took:?}\n{out}");
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--timeout 0` would stop every script at once: it is refused, as is a
/// `--register-timeout` of 0, with what to write instead.
#[test]
fn a_timeout_of_zero_is_refused() {
    let dir = scratch("timeout-zero");
    let a = write(&dir, "a.rhai", "test(\"a\", || { assert(true); });\n");
    for (flag, why) in [
        (
            "--timeout",
            "stop every script at once; give more than 0 s (leave it out for no limit)",
        ),
        (
            "--register-timeout",
            "fail every script before its client registered; give more than 0 s",
        ),
    ] {
        let run = run_nsh(&["test", &a, flag, "0"], Duration::from_secs(30), |_| {});
        assert_eq!(
            run.status.code(),
            Some(2),
            "{flag}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{flag}: {}", run.stdout);
        assert!(
            run.stderr
                .contains(&format!("nsh test: `{flag}`: 0 would {why}\n")),
            "{flag}: {}",
            run.stderr
        );
    }
    let help = run_nsh(&["test", "--help"], Duration::from_secs(30), |_| {});
    assert!(
        help.stdout.contains("leave it out for no limit"),
        "{}",
        help.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A signal while nsh waits for the client's Register (wakatiwai registers
/// under another endpoint than the one awaited): the cases say the run was
/// interrupted before the client registered.
#[test]
fn a_signal_before_the_client_registered_says_so() {
    let dir = scratch("sig-register");
    let a = write(
        &dir,
        "a.rhai",
        "test(\"reads\", || { read(\"/3/0/0\"); });\n",
    );
    let marker = format!("runner-sigreg-{}", std::process::id());
    let client = format!(
        "node {} 127.0.0.1 {{port}} not-{{endpoint}} {marker}",
        peers_dir().join("waka.js").display()
    );
    let nsh = LiveNsh::piped(&["test", &a, "--client", &client, "--register-timeout", "60"]);
    let waited = Instant::now();
    while processes_with(std::slice::from_ref(&marker)).is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(20), "no client");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let sent = std::process::Command::new("kill")
        .arg("-INT")
        .arg(nsh.pid().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let (status, out, err) = nsh.finish(30);
    assert_eq!(status.code(), Some(130), "{status}\n{out}{err}");
    let why = format!("{a}: interrupted by SIGINT before the client registered");
    assert!(
        out.starts_with(&format!(
            "skip 1 - reads # not run: the script failed: {why}\nnot ok - {a} (0 passed, 1 failed, 1 skipped, "
        )),
        "{out}"
    );
    assert!(out.contains(&format!("  # {why}\n")), "{out}");
    assert_eq!(processes_with(&[marker]), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// In the JSON lines the cases a failed script did not reach come in the
/// order written, before the script's own failure, their times in that
/// order too (a reader sorting by time keeps it).
#[test]
fn json_lines_keep_the_not_run_cases_in_order_before_the_scripts_failure() {
    let dir = scratch("json-order");
    let a = write(
        &dir,
        "throws.rhai",
        "test(\"a\", || { assert(true); });\nthrow \"boom\";\ntest(\"b\", || {});\ntest(\"c\", || {});\n",
    );
    let json = dir.join("lines.jsonl");
    let run = run_nsh(
        &["test", &a, "--json", &json.display().to_string()],
        Duration::from_secs(30),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    let cases = json_cases(&json);
    let names: Vec<(&str, &str)> = cases
        .iter()
        .map(|(_, _, name, status, ..)| (name.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("a", "passed"),
            ("b", "skipped"),
            ("c", "skipped"),
            (a.as_str(), "failed")
        ]
    );
    for w in cases.windows(2) {
        assert!(
            w[0].5 <= w[1].5,
            "{} after {} in time\n{cases:?}",
            w[0].2,
            w[1].2
        );
    }
    assert!(cases[2].5 < cases[3].5, "{cases:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `exit(CODE)` inside a case ends it as a case ends: an observation it
/// left active on the real wakatiwai client is cancelled (the Cancel is
/// sent, in that case) and noted on it; and the exit names the case, on
/// the console, in JUnit and in the JSON lines, and when the script runs
/// alone.
#[test]
fn an_exit_inside_a_case_cancels_its_observations_and_names_the_case() {
    let dir = scratch("exit-in-case");
    let s = write(
        &dir,
        "exits.rhai",
        "test(\"passes\", || { assert(true); });\n\
         test(\"reads\", || {\n    observe(\"/3/0/9\");\n    exit(3);\n});\n\
         test(\"never\", || { assert(true); });\n",
    );
    let xml = dir.join("junit.xml");
    let json = dir.join("run.jsonl");
    let run = run_nsh(
        &[
            "test",
            &s,
            "--client",
            &waka_client("exit-in-case"),
            "--junit",
            &xml.display().to_string(),
            "--json",
            &json.display().to_string(),
        ],
        Duration::from_secs(120),
        |_| {},
    );
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    let exited = format!("{s}:4:5: exit(3) in case `reads`");
    for line in [
        "ok 1 - passes\n".to_string(),
        format!(
            "not ok 2 - reads\n  # {exited}\n  # left the observation of /3/0/9 active: cancelled\n"
        ),
        format!("skip 3 - never # not run: the script failed: {exited}\n"),
    ] {
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    // The Cancel went to the device, in case 2.
    let text = std::fs::read_to_string(&json).unwrap();
    let cancel = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["summary"] == "Cancel Observation /3/0/9")
        .unwrap_or_else(|| panic!("no cancel in\n{text}"));
    assert_eq!(cancel["direction"], "sent");
    assert_eq!(cancel["case"], 2);
    let cases: Vec<(String, String, String)> = json_cases(&json)
        .into_iter()
        .map(|(_, _, name, status, message, _)| (name, status, message))
        .collect();
    assert!(
        cases[1].0 == "reads" && cases[1].2.contains(&exited),
        "{cases:?}"
    );
    let junit = crate::report::python(JUNIT_CASES, &xml);
    assert!(junit.contains(&format!("|reads|{exited}")), "{junit}");
    // A script run alone (no client here): its status, and the case named.
    let alone = write(
        &dir,
        "alone.rhai",
        "test(\"reads\", || {\n    exit(3);\n});\n",
    );
    let run = run_nsh(&[&alone], Duration::from_secs(30), |_| {});
    assert_eq!(run.status.code(), Some(3), "{}", run.stdout);
    let exited = format!("{alone}:2:5: exit(3) in case `reads`");
    assert!(run.stderr.contains(&exited), "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("not ok 1 - reads\n  # {exited}\n")),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `exit(CODE)` in an `after_each` ends the case as in its body: the case
/// is recorded with its own failure and then the exit, naming the case.
#[test]
fn an_exit_in_after_each_records_the_case_it_ended() {
    let dir = scratch("exit-in-after-each");
    let s = write(
        &dir,
        "after.rhai",
        "after_each(|| { exit(4); });\ntest(\"fails\", || { throw \"broken\"; });\n",
    );
    let run = run_nsh(&[&s], Duration::from_secs(30), |_| {});
    assert_eq!(run.status.code(), Some(4), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "not ok 1 - fails\n  # {s}:2:20: broken\n  # and in after_each: {s}:1:17: exit(4) in case `fails`\n"
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains(&format!("{s}:1:17: exit(4) in case `fails`")),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
