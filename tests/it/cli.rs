//! The command line, script mode and piped sessions.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{LiveNsh, Peer, nsh_bin, repo, run_nsh, script};

fn nsh(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(nsh_bin())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run nsh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `nsh … | head -1`: the reader goes away, nsh ends quietly (no panic).
/// Here the reader is gone before nsh writes at all (`| true`).
#[test]
fn output_into_a_closed_pipe_ends_nsh_without_a_panic() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' test --ets --list | true", nsh_bin()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_and_version_exit_zero() {
    let (code, out, _) = nsh(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Usage: nsh [OPTIONS] [SCRIPT.rhai] [ARGS]..."),
        "{out}"
    );
    for flag in [
        "--listen",
        "--psk-file",
        "--crt-file",
        "--connection-id",
        "--debug",
    ] {
        assert!(out.contains(flag), "{flag} in --help:\n{out}");
    }
    let (code, out, _) = nsh(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("nsh "), "{out}");
}

#[test]
fn dtls_flags_without_what_they_need_are_refused_with_one_line() {
    for (flag, says) in [
        (
            &["--psk-identity", "x"][..],
            "--psk-identity needs --psk-key",
        ),
        (&["-k", "y"], "--psk-key needs --psk-identity"),
        (
            &["--connection-id", "abc"],
            "Cannot use --connection-id in NoSec mode",
        ),
        (&["--crt-file", "a.pem"], "certificates need key_file"),
        (
            &["-i", "a", "-k", "b", "--crt-file", "c", "--key-file", "d"],
            "Cannot use PSK and Certificates at the same time",
        ),
    ] {
        let (code, _, err) = nsh(flag);
        assert_eq!(code, 2, "{flag:?}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{flag:?}: {err}");
    }
    let (code, _, err) = nsh(&["-i", "a", "-k", "b", "--debug", "7"]);
    assert_eq!(code, 2);
    assert!(err.contains("7 is not in 1..=3"), "{err}");
    let (code, _, err) = nsh(&["--bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--bogus' found"), "{err}");
    // A mistyped flag gets a suggestion.
    let (code, _, err) = nsh(&["--psk-idenity", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("a similar argument exists: '--psk-identity'"),
        "{err}"
    );
}

#[test]
fn coap_decode_prints_the_manuals_empty_ack() {
    let (code, out, _) = nsh(&["-c", r"coap_decode \x60\x00\x13\x38"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "version: 1\ntype: ACKNOWLEDGEMENT\ncode: 0.00 (EMPTY)\nmsg_id: 4920\ntoken:  (length: 0)\noptions:\n    \ncontent: 0 bytes\n\n"
    );
}

#[test]
fn lwm2m_decode_reports_where_a_datagram_is_broken() {
    let (code, _, err) = nsh(&["-c", r"lwm2m_decode \x40\x01\x00\x01\xf0"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("option delta") && err.contains("byte 4"),
        "{err}"
    );
}

#[test]
fn unknown_option_keys_list_the_allowed_ones() {
    let (code, _, err) = nsh(&["-c", r#"read("/3/0", #{acept: "tlv"})"#]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "unknown option `acept`, did you mean `accept`? (allowed: path, accept, msg_id, token, options, timeout_s)"
        ),
        "{err}"
    );
}

#[test]
fn failing_script_exits_one_with_file_line_and_column() {
    let dir = tempdir();
    let path = dir.join("fail.rhai");
    std::fs::write(&path, "let a = 1;\n\nassert_eq(a, 2);\n").unwrap();
    let (code, _, err) = nsh(&[path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("fail.rhai:3:1"), "{err}");
    assert!(
        err.contains("left:  1") && err.contains("right: 2"),
        "{err}"
    );
}

#[test]
fn script_arguments_arrive_as_an_array_and_stdlib_imports_from_anywhere() {
    let dir = tempdir();
    let path = dir.join("args.rhai");
    std::fs::write(
        &path,
        "import \"stdlib/registration\" as reg;\nimport \"stdlib/bootstrap\" as bs;\nimport \"stdlib/firmware\" as fw;\nassert_eq(ARGS, [\"a\", \"b c\"]);\nprint(\"ok \" + ARGS.len());\n",
    )
    .unwrap();
    let out = Command::new(nsh_bin())
        .arg(&path)
        .arg("a")
        .arg("b c")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok 2\n");
}

#[test]
fn a_request_without_a_response_throws_a_catchable_error() {
    // Nothing answers on the target port (held, never read): the read
    // times out, the script catches it.
    let (_silent, port) = crate::harness::silent_udp_port();
    let port = port.to_string();
    let run = run_nsh(
        &[&script("timeout.rhai"), &port],
        Duration::from_secs(30),
        |_| {},
    );
    run.assert_ok();
    assert!(
        run.stdout
            .contains("caught: read: no response to `Read /3/0` within 0.3 s"),
        "{}",
        run.stdout
    );
}

#[test]
fn piped_stdin_replays_a_session_of_command_lines() {
    let text = piped(
        "set auto_ack=0\nset\nlet x = 40 + 2\nprint(x)\nfor i in 0..2 {\n  print(\"i=\" + i)\n}\nread 0/3\nget_error\n",
    );
    assert!(text.contains("Auto 0.00 ACK responses disabled"), "{text}");
    assert!(
        text.contains("auto_update=1 auto_reregister=1 auto_bspack_error=1 auto_ack=0"),
        "{text}"
    );
    assert!(text.contains("42\n"), "{text}");
    assert!(text.contains("i=0\ni=1\n"), "{text}");
    assert!(
        text.contains("read: not a valid CoAP path: 0/3 (try \"get_error\" for details)"),
        "{text}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nsh-it-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[test]
fn load_objects_reads_oma_xml_and_names_bad_files() {
    let dir = tempdir();
    std::fs::write(
        dir.join("9999.xml"),
        "<LWM2M><Object ObjectType=\"MODefinition\"><Name>Test</Name><ObjectID>9999</ObjectID>\
         <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources>\
         <Item ID=\"1\"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>\
         <Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item></Resources></Object></LWM2M>",
    )
    .unwrap();
    let (code, out, _) = nsh(&["-c", &format!("load_objects {}", dir.display())]);
    assert_eq!(code, 0);
    assert!(
        out.contains("loaded 1 object definition(s): [9999]"),
        "{out}"
    );
    std::fs::write(dir.join("broken.xml"), "<LWM2M><Object>").unwrap();
    let (code, _, err) = nsh(&[
        "-c",
        &format!("load_objects {}", dir.join("broken.xml").display()),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.xml"), "{err}");
}

/// The manual's subshell example (7.1.2.2.4), typed as shown, through piped
/// standard input.
#[test]
fn tlv_and_cbor_subshells_reproduce_the_manuals_example() {
    let session = "tlv\nadd_instance 0\nadd_multiple_resource 0\nmake_multires (0,\\x02),(1,\\x05)\nadd_instance 1\n\
                   add_resource 1 type=int 11\nadd_resource 3 type=int 1\nshow\nexit\n\
                   cbor\nadd_resource 0/0/0 int 2\nadd_resource 0/0/1 int 5\nadd_resource 1/1 int 11\nadd_resource 1/3 int 1\nshow\nexit\n\
                   assert_eq(tlv_data, bytes(\"\\x08\\x00\\x08\\x86\\x00\\x41\\x00\\x02\\x41\\x01\\x05\\x06\\x01\\xc1\\x01\\x0b\\xc1\\x03\\x01\"));\n\
                   print(\"kept\");\n";
    let mut child = Command::new(nsh_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(session.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let tlv_show = "  path    value\n---------------\n\
                    \x20 0       instance (1 resources)\n\
                    \x20 0/0       multiple resource (2 instances)\n\
                    \x20 0/0/0       resource instance = b'\\x02' (int: 2)\n\
                    \x20 0/0/1       resource instance = b'\\x05' (int: 5)\n\
                    * 1       instance (2 resources)\n\
                    \x20 1/1       resource = b'\\x0b' (int: 11)\n\
                    \x20 1/3       resource = b'\\x01' (int: 1)\n";
    assert!(text.contains(tlv_show), "{text}");
    assert!(
        text.contains("exiting\n\\x08\\x00\\x08\\x86\\x00\\x41\\x00\\x02\\x41\\x01\\x05\\x06\\x01\\xc1\\x01\\x0b\\xc1\\x03\\x01\n"),
        "{text}"
    );
    let cbor_show = "CBOR (4 elements):\n\n\
                     \x20 {<SenmlLabel.NAME: 0>: '0/0/0', <SenmlLabel.VALUE: 2>: 2}\n\
                     \x20 {<SenmlLabel.NAME: 0>: '0/0/1', <SenmlLabel.VALUE: 2>: 5}\n\
                     \x20 {<SenmlLabel.NAME: 0>: '1/1', <SenmlLabel.VALUE: 2>: 11}\n\
                     \x20 {<SenmlLabel.NAME: 0>: '1/3', <SenmlLabel.VALUE: 2>: 1}\n";
    assert!(text.contains(cbor_show), "{text}");
    assert!(text.contains(
        "exiting\n\\x84\\xa2\\x00\\x65\\x30\\x2f\\x30\\x2f\\x30\\x02\\x02\\xa2\\x00\\x65\\x30\\x2f\\x30\\x2f\\x31\\x02\\x05\\xa2\\x00\\x63\\x31\\x2f\\x31\\x02\\x0b\\xa2\\x00\\x63\\x31\\x2f\\x33\\x02\\x01\n"
    ), "{text}");
    assert!(text.contains("kept"), "{text}");
}

#[test]
fn encode_builds_every_format_from_one_map_and_decode_reads_it_back() {
    let (code, out, err) = nsh(&[
        "-c",
        r#"let m = #{"/3/0/0": "ACME", "/3/0/9": 87, "/3/0/13": 1700000000};
           for f in ["tlv", "senml+json", "senml+cbor", "lwm2m+json", "lwm2m+cbor"] {
               let back = decode(f, encode(f, m), "/3/0");
               assert_eq(back, m, f);
           }
           let t = tlv(); t.add_instance(0); t.add_resource(1, 11);
           assert_eq(hex(t.serialize()), "\\x03\\x00\\xc1\\x01\\x0b");
           print("round trips ok")"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("round trips ok"), "{out}{err}");
}

#[test]
fn builders_and_maps_are_sent_as_payloads_with_their_content_format() {
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = client.local_addr().unwrap().port();
    let code = format!(
        r#"connect("127.0.0.1", {port});
           set(#{{retransmit: false}});
           let t = tlv(); t.add_instance(0); t.add_resource(1, 11);
           try {{ write("/1", t, #{{timeout_s: 0.2}}) }} catch {{}}
           try {{ write("/3/0/14", #{{"/3/0/14": "+02:00"}}, #{{format: "senml+json", timeout_s: 0.2}}) }} catch {{}}"#
    );
    let (status, _, err) = nsh(&["-c", &code]);
    assert_eq!(status, 0, "{err}");
    let mut buf = [0u8; 512];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    let first = nsh::coap::udp::decode(&buf[..n]).unwrap();
    assert_eq!(first.path_string(), "/1");
    assert_eq!(
        first.content_format(),
        Some(nsh::coap::ContentFormat::LWM2M_TLV)
    );
    assert_eq!(first.payload, vec![0x03, 0x00, 0xc1, 0x01, 0x0b]);
    let (n, _) = client.recv_from(&mut buf).unwrap();
    let second = nsh::coap::udp::decode(&buf[..n]).unwrap();
    assert_eq!(
        second.content_format(),
        Some(nsh::coap::ContentFormat::SENML_JSON)
    );
    assert_eq!(
        String::from_utf8_lossy(&second.payload),
        r#"[{"bn":"/3/0/","n":"14","vs":"+02:00"}]"#
    );
}

#[test]
fn test_blocks_report_each_case_and_a_junit_file() {
    let dir = tempdir();
    let script = dir.join("cases.rhai");
    std::fs::write(
        &script,
        "test(\"adds\", || { assert_eq(1 + 1, 2); });\n\
         test(\"fails <here>\", || { assert_eq(1 + 1, 3, \"sum\"); });\n\
         test(\"bad path\", || { read(\"0/3\"); });\n\
         print(\"goes on\");\n",
    )
    .unwrap();
    let report = dir.join("report.xml");
    let (code, out, err) = nsh(&[
        "--junit",
        report.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    // The failure names the file, as `nsh test` does (FILE:LINE:COL).
    assert!(
        out.contains(&format!(
            "ok 1 - adds\nnot ok 2 - fails <here>\n  # {}:2:",
            script.display()
        )),
        "{out}"
    );
    assert!(out.contains("  #   left:  2\n  #   right: 3\n"), "{out}");
    assert!(
        out.contains(&format!("not ok 3 - bad path\n  # {}:3:", script.display())),
        "{out}"
    );
    assert!(out.contains("read: not a valid CoAP path: 0/3"), "{out}");
    assert!(out.contains("goes on\n1 passed, 2 failed\n"), "{out}");
    assert!(err.contains("cases.rhai: 2 of 3 tests failed"), "{err}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains("<testsuite name=\"cases\" tests=\"3\" failures=\"2\""),
        "{xml}"
    );
    assert!(xml.contains("name=\"fails &lt;here&gt;\""), "{xml}");

    std::fs::write(
        &script,
        "test(\"one\", || {});\ntest(\"two\", || { assert(true) });\n",
    )
    .unwrap();
    let (code, out, _) = nsh(&[
        "--junit",
        report.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.ends_with("2 passed, 0 failed\n"), "{out}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"0\""), "{xml}");
}

#[test]
fn a_failing_after_each_is_reported_beside_the_failing_body() {
    let dir = tempdir();
    let script = dir.join("hooks.rhai");
    std::fs::write(
        &script,
        "after_each(|| { assert_eq(\"teardown\", \"broken\"); });\n\
         test(\"body fails\", || { assert_eq(1, 2); });\n\
         test(\"body passes\", || { });\n",
    )
    .unwrap();
    let (code, out, _) = nsh(&[script.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let first = out.split("not ok 2").next().unwrap();
    assert!(first.contains("left:  1"), "{out}");
    assert!(first.contains("and in after_each: "), "{out}");
    assert!(first.contains("\"teardown\""), "{out}");
    assert!(
        out.contains("not ok 2 - body passes\n  # in after_each: "),
        "{out}"
    );
}

#[test]
fn a_script_skipped_outside_its_cases_exits_0() {
    let dir = tempdir();
    let script = dir.join("skipping.rhai");
    std::fs::write(
        &script,
        "test(\"a\", || { assert(true); });\nskip(\"no device here\");\ntest(\"b\", || { assert(false); });\n",
    )
    .unwrap();
    let (code, out, err) = nsh(&[script.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("skipped: no device here"), "{out}");
    assert!(!out.contains("not ok"), "{out}");
}

#[test]
fn listen_tcp_serves_tcp_and_with_a_psk_tls_over_tcp() {
    let (code, out, err) = nsh(&["-c", "listen 0 tcp=1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("listening on TCP port "), "{out}");
    let (code, out, err) = nsh(&["-c", "listen 0 tcp=1 psk_identity=a psk_key=b"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("listening on TLS over TCP (PSK identity `a`) port "),
        "{out}"
    );
}

#[test]
fn the_history_keeps_only_the_last_history_limit_messages() {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let code = format!(
        r#"connect("127.0.0.1", {port});
           set(#{{history_limit: 3}});
           for i in 0..5 {{ reset(#{{msg_id: i}}) }}
           let h = history(100);
           assert_eq(h.map(|m| m.msg_id), [2, 3, 4]);
           for i in 5..40 {{ reset(#{{msg_id: i}}) }}
           assert_eq(history(100).len(), 3);
           assert_eq(history(1)[0].msg_id, 39);
           print("kept")"#
    );
    let (status, out, err) = nsh(&["-c", &code]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("History keeps the last 3 messages"), "{out}");
    assert!(out.contains("kept"), "{out}");
}

/// Runs `session` through nsh's piped standard input; returns its output.
fn piped(session: impl AsRef<[u8]>) -> String {
    let mut child = Command::new(nsh_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(session.as_ref())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The original (powercmd) ran a command from any unique prefix of its
/// name and listed the candidates of an ambiguous one; a word that is a
/// Rhai variable or function stays Rhai.
#[test]
fn a_bracket_in_a_command_lines_payload_does_not_open_a_block() {
    // Escaped payload bytes (JSON, say) hold any bracket: the line is
    // still one command, and the lines after it run.
    let out = piped(
        "lwm2m_decode \\x60\\x45\\x00\\x01\\xff{abc\n\
         coap_decode \\x60\\x00\\x13\\x39\n\
         print(\"@@after\")\n",
    );
    assert!(out.contains("@@after"), "{out}");
    assert!(out.contains("msg_id=4921") || out.contains("4921"), "{out}");
}

#[test]
fn piped_command_lines_accept_unique_prefixes_and_list_ambiguous_ones() {
    let text = piped(
        "coap_d \\x60\\x00\\x13\\x38\n\
         payload_buffer_show_h\n\
         ex /3/0\n\
         let discov = 7\n\
         discov\n\
         exp 1\n\
         get\n\
         print(\"end\")\n",
    );
    assert!(
        text.contains("* prefix: coap_decode\nversion: 1\ntype: ACKNOWLEDGEMENT\ncode: 0.00 (EMPTY)\nmsg_id: 4920\n"),
        "{text}"
    );
    assert!(
        text.contains("* prefix: payload_buffer_show_hex\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "ambiguous command: ex (possible: execute exit expect) (try \"get_error\" for details)\n"
        ),
        "{text}"
    );
    // A variable and Rhai's own `exp` and `get` are never taken for a
    // command (`discover`, `expect`, `get_error`).
    assert!(text.contains("\n7\n"), "{text}");
    assert!(!text.contains("* prefix: expect"), "{text}");
    assert!(!text.contains("* prefix: get_error"), "{text}");
    assert!(!text.contains("* prefix: discover"), "{text}");
    assert!(text.contains("end\n"), "{text}");
}

/// A Message as the value of a line shows its summary line and its decoded
/// values; an array of them, one summary line each.
#[test]
fn piped_lines_show_a_message_value_with_its_decoded_values() {
    let (_silent, port) = crate::harness::silent_udp_port();
    let text = piped(format!(
        "connect 127.0.0.1 {port}\n\
         set retransmit=0\n\
         try {{ write(\"/3/0/14\", \"+02:00\", #{{timeout_s: 0.05}}) }} catch {{ print(\"@@timed out\") }}\n\
         print(\"@@one\")\n\
         let m = history(1)[0]; m\n\
         print(\"@@two\")\n\
         [m, m]\n\
         print(\"@@end\")\n"
    ));
    assert!(text.contains("@@timed out\n"), "{text}");
    // `history` prints its table row, then the value shows.
    assert!(
        text.contains(
            "  -> Write /3/0/14: TEXT_PLAIN, 6 bytes\n-> Write /3/0/14: TEXT_PLAIN, 6 bytes\n  /3/0/14 UTC Offset = \"+02:00\"\n@@two\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "@@two\n-> Write /3/0/14: TEXT_PLAIN, 6 bytes\n-> Write /3/0/14: TEXT_PLAIN, 6 bytes\n@@end\n"
        ),
        "{text}"
    );
}

#[test]
fn a_script_file_prints_no_message_values() {
    let dir = tempdir();
    let path = dir.join("values.rhai");
    let (_silent, port) = crate::harness::silent_udp_port();
    std::fs::write(
        &path,
        format!(
            "connect(\"127.0.0.1\", {port});\n\
             set(#{{retransmit: false}});\n\
             try {{ write(\"/3/0/14\", \"+02:00\", #{{timeout_s: 0.05}}) }} catch {{}}\n\
             history(1)[0]\n"
        ),
    )
    .unwrap();
    let (code, out, err) = nsh(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-> Write /3/0/14"), "{out}");
    assert!(!out.contains("UTC Offset"), "{out}");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definition() {
    for (shell, marker) in [
        ("bash", "_nsh()"),
        ("zsh", "#compdef nsh"),
        ("fish", "complete -c nsh"),
    ] {
        let (code, out, err) = nsh(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}:\n{out}");
        assert!(out.contains("psk-file"), "{shell}:\n{out}");
    }
    let (code, out, err) = nsh(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(".ie") || out.contains(".TH nsh 1"), "{out}");
    assert!(out.contains("connection\\-id"), "{out}");
    let (code, _, err) = nsh(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn listen_takes_a_port_only_when_one_follows() {
    let dir = std::env::temp_dir().join(format!("nsh-cli-l-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("args.rhai");
    std::fs::write(&script, "print(`args ${ARGS}`);").unwrap();
    let path = script.display().to_string();
    // `-l 0 SCRIPT`: port 0; the script's own `-l` stays its argument.
    let (code, out, err) = nsh(&["-l", "0", &path, "-l", "x"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("args [\"-l\", \"x\"]"), "{out}");
    assert!(!out.contains("port 5683"), "{out}");
    // `--debug`'s level is optional in the same way.
    let (code, out, err) = nsh(&["-i", "a", "-k", "b", "--debug", &path, "z"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("args [\"z\"]"), "{out}");
    let (code, _, err) = nsh(&["-l", "99999"]);
    assert_eq!(code, 2);
    assert!(err.contains("99999"), "{err}");
}

#[test]
fn every_field_a_message_has_is_listed_mapped_and_matchable() {
    // `at_ms` (when it was sent or received) and `queue_mode` are fields
    // like the others: named when a field is unknown, in `to_map()`, and
    // accepted in a pattern.
    let (silent, port) = crate::harness::silent_udp_port();
    let code = format!(
        "listen(0); connect(\"127.0.0.1\", {port}); udp(`\\x50\\x01\\x00\\x07`); \
         let m = history()[0]; \
         print(`@@at ${{m.at_ms > 1700000000000}} ${{m.to_map().contains(\"at_ms\")}} ${{m.to_map().contains(\"queue_mode\")}}`); \
         assert_match(m, #{{at_ms: m.at_ms, queue_mode: m.queue_mode}}); print(\"@@pattern true\"); \
         m[\"time\"]"
    );
    let run = run_nsh(&["-c", &code], Duration::from_secs(20), |_| {});
    drop(silent);
    assert!(run.stdout.contains("@@at true true true"), "{}", run.stdout);
    assert!(run.stdout.contains("@@pattern true"), "{}", run.stdout);
    assert!(
        run.stderr.contains("a Message has no field `time`"),
        "{}",
        run.stderr
    );
    for f in ["at_ms", "queue_mode", "direction", "identity"] {
        assert!(run.stderr.contains(f), "{f} listed: {}", run.stderr);
    }
}

#[test]
fn an_error_in_a_block_of_several_lines_says_which_line() {
    // A one-line error needs no position; in a block it does.
    let text = piped(
        "let x = 1;\n\
         for i in 0..2 {\n\
           print(i)\n\
           print(i);\n\
         }\n\
         print(\"@@after\")\n\
         nosuchthing\n",
    );
    assert!(
        text.contains("line 3, column ")
            && text.contains("Expecting ';' to terminate this statement"),
        "{text}"
    );
    assert!(text.contains("@@after"), "{text}");
    assert!(
        text.contains("Variable not found: nosuchthing (try"),
        "a single line keeps its short form: {text}"
    );
}

#[test]
fn a_function_defined_at_the_prompt_is_there_on_later_lines() {
    let text = piped(
        "fn double(x) { x * 2 }\n\
         print(`@@${double(4)}`)\n\
         fn double(x) { x * 3 }\n\
         fn half(x) {\n  x / 2\n}\n\
         print(`@@${double(4)} ${half(8)}`)\n",
    );
    assert!(text.contains("@@8\n"), "{text}");
    assert!(
        text.contains("@@12 4\n"),
        "redefined, and one over lines: {text}"
    );
}

#[test]
fn a_wait_of_days_is_shown_in_days_and_said_when_set() {
    // MAX_TRANSMIT_WAIT doubles with each retransmission: at 20 it is
    // weeks, at 100 more than any clock; `set` says so in words a person
    // reads, and setting it says how to bound it.
    let text = piped("set max_retransmit=20\nset\nset max_retransmit=100\nset\n");
    assert!(text.contains("timeout=auto (72.8 days)"), "{text}");
    assert!(
        text.contains("timeout=auto (more than a century)"),
        "{text}"
    );
    assert!(
        text.contains(
            "a client that never answers is now waited for 72.8 days (MAX_TRANSMIT_WAIT); `set timeout=S` bounds every wait"
        ),
        "{text}"
    );
    assert!(!text.contains("18446744073709551616"), "{text}");
}

#[test]
fn a_mistyped_command_name_gets_a_suggestion() {
    let text = piped("raed /3/0\nreed(\"/3/0\")\nhelp raed\nqqqq\n");
    assert!(
        text.contains("Variable not found: raed (did you mean `read`?)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Function not found: reed (&str | ImmutableString | String) (did you mean `read`?)"
        ),
        "{text}"
    );
    assert!(
        text.contains("help: no such command: raed (did you mean: read)"),
        "{text}"
    );
    assert!(
        text.contains("Variable not found: qqqq (try"),
        "nothing close, no hint: {text}"
    );
}

#[test]
fn a_call_with_too_few_arguments_names_the_missing_one() {
    let text = piped("write(\"/3/0/14\")\nexecute()\n");
    assert!(
        text.contains("write: missing value for `content`"),
        "{text}"
    );
    assert!(text.contains("execute: missing value for `path`"), "{text}");
}

#[test]
fn recv_in_the_originals_form_shows_the_message_it_took() {
    let mut nsh = crate::harness::LiveNsh::piped(&["-l", "0"]);
    let line = nsh.wait_line(|l| crate::harness::port_on(l).is_some(), 10);
    let port = crate::harness::port_on(&line).unwrap();
    let device = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ping = nsh::coap::Message::new(
        nsh::coap::Type::NonConfirmable,
        nsh::coap::Code::POST,
        0x5151,
    );
    ping.set_uri("/dp");
    ping.payload = b"x".to_vec();
    device
        .send_to(&nsh::coap::udp::encode(&ping), ("127.0.0.1", port))
        .unwrap();
    nsh.wait("<- Send /dp", 10);
    nsh.send_line("print(\"@@taking\")");
    nsh.wait("@@taking", 10);
    nsh.send_line("recv 5");
    nsh.send_line("print(\"@@taken\")");
    nsh.wait("@@taken", 10);
    let seen = nsh.seen().to_string();
    let after = seen.split("@@taking").nth(1).unwrap_or_default();
    assert!(after.contains("Send /dp"), "recv showed nothing:\n{seen}");
    nsh.send_line("exit");
    nsh.finish(10);
}

/// The original warned and went on (reference §1.3); so does nsh.
#[test]
fn debug_without_dtls_warns_and_goes_on() {
    let (code, out, err) = nsh(&["--debug", "-c", "listen 0"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: debug mode not available on non-DTLS sockets"),
        "{err}"
    );
    assert!(out.contains("listening on UDP port"), "{out}");
    let (code, out, err) = nsh(&["-c", "listen 0 debug=1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("warning: debug mode not available on non-DTLS sockets"),
        "{out}{err}"
    );
}

/// A script that asks for more memory than the machine has gets an error
/// it can catch, and the shell goes on (it used to abort, losing the
/// history and every registration).
#[test]
fn huge_allocations_in_a_script_are_errors_not_aborts() {
    for (code, says) in [
        ("let a = []; a.pad(2000000000, 0);", "Size of array"),
        ("let b = blob(); b.pad(100000000000, 0);", "Size of blob"),
        ("let b = blob(100000000000);", "Size of blob"),
        ("let s = \"x\"; s.pad(3000000000, \"b\");", "Size of string"),
    ] {
        let (status, out, err) = nsh(&["-c", code]);
        assert_eq!(status, 1, "{code}: {out}{err}");
        assert!(
            err.contains(says) && err.contains("too large"),
            "{code}: {err}"
        );
    }
    let out = piped("let a = []; a.pad(2000000000, 0);\nprint(\"@@alive\")\n");
    assert!(out.contains("@@alive"), "{out}");
}

/// Runs `sh -c SCRIPT` with nsh's path in `$NSH`; returns status and output.
fn sh(script: &str) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("NSH", nsh_bin())
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A loop that grows a value without end is stopped with an error that
/// names the heap and its limit, before the allocator fails and aborts
/// nsh (it used to die with `memory allocation of … failed`, losing the
/// history). The address space is limited to 3 GB here, so the default
/// limit (a quarter of what the process may have) is small and reached
/// quickly; the shell goes on after it.
#[test]
fn a_runaway_script_is_stopped_at_the_heap_limit_not_aborted() {
    let limit = "ulimit -v 1500000;";
    let (status, out) = sh(&format!(
        "{limit} \"$NSH\" -c 'let s = \"0123456789\"; loop {{ s += s; }}'"
    ));
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("stopped: the script grew nsh's heap by")
            && out.contains("`set heap_limit_mb=N`"),
        "{out}"
    );
    assert!(!out.contains("memory allocation"), "{out}");
    let (status, out) = sh(&format!(
        "{limit} printf 'let a = [];\\nloop {{ a.push(`entry ${{a.len()}} of a list that grows without end`); }}\\nprint(\"@@alive\")\\n' | \"$NSH\""
    ));
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("stopped: the script grew nsh's heap") && out.contains("@@alive"),
        "{out}"
    );
    // A limit of its own: a small one is reached at once.
    let (status, out) =
        sh("\"$NSH\" -c 'set(#{heap_limit_mb: 16}); let b = blob(); loop { b += blob(1000000); }'");
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("more than the limit of 16 MB"), "{out}");
}

/// A piped line that is not UTF-8 is reported and skipped; the session
/// goes on (it used to end there, silently, with status 0).
#[test]
fn a_piped_line_that_is_not_utf8_is_reported_and_the_rest_runs() {
    let text = piped(b"print(\"@@one\")\n\xff\xfe\nprint(\"@@two\")\n");
    assert!(text.contains("@@one") && text.contains("@@two"), "{text}");
    assert!(
        text.contains("line 2: not valid UTF-8 (byte 0xff at column 1); the line was not run"),
        "{text}"
    );
}

/// An unclosed "…" string is an error at once, not a block that takes
/// the lines after it.
#[test]
fn an_unclosed_string_does_not_swallow_the_next_lines() {
    let out = piped("print(\"/3/0\nprint(\"@@next\")\n");
    assert!(out.contains("@@next"), "{out}");
    assert!(out.contains("not terminated"), "{out}");
}

/// As the original's `listen`, `-l` empties the payload buffer once the
/// first client arrived: the manual's payload-buffer example then shows
/// only what the next read brings, not the Register's links.
#[test]
fn listen_empties_the_payload_buffer_once_the_first_client_arrived() {
    let mut nsh = crate::harness::LiveNsh::piped(&["-l", "0"]);
    let line = nsh.wait_line(|l| crate::harness::port_on(l).is_some(), 10);
    let port = crate::harness::port_on(&line).unwrap();
    let device = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut register =
        nsh::coap::Message::new(nsh::coap::Type::Confirmable, nsh::coap::Code::POST, 0x6161);
    register.token = vec![1];
    register.set_uri("/rd?ep=buffered&lt=300");
    register.payload = b"</3/0>,</1/0>".to_vec();
    device
        .send_to(&nsh::coap::udp::encode(&register), ("127.0.0.1", port))
        .unwrap();
    nsh.wait("<- Register", 10);
    nsh.send_line("payload_buffer_show");
    nsh.send_line("print(\"@@shown\")");
    nsh.wait("@@shown", 10);
    assert!(!nsh.seen().contains("</3/0>,</1/0>'"), "{}", nsh.seen());
    assert!(nsh.seen().contains("b''"), "{}", nsh.seen());
    nsh.send_line("exit");
    nsh.finish(10);
}

/// A failure inside an imported module names the module's file with the
/// line and column (they are its lines, not the script's).
#[test]
fn a_failure_in_a_module_names_the_modules_file() {
    let dir = tempdir();
    let script = dir.join("uses_module.rhai");
    std::fs::write(
        &script,
        "import \"stdlib/registration\" as reg;\n\
         reg::check_registration(#{kind: \"Update\", links: []}, #{});\n",
    )
    .unwrap();
    let (code, out, err) = nsh(&[script.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("in `check_registration`, stdlib/registration.rhai:"),
        "{err}"
    );
}

/// `import` at the prompt lasts for the lines after it, as variables and
/// functions do.
#[test]
fn an_import_at_the_prompt_stays_for_later_lines() {
    let out = piped(
        "import \"stdlib/registration\" as reg;\n\
         print(\"@@\" + reg::check_registration(#{kind: \"Register\", links: []}, #{}));\n",
    );
    assert!(out.contains("@@true"), "{out}");
}

/// A syntax error in one line says at which column; a control character
/// in it is shown, not printed raw.
#[test]
fn a_one_line_syntax_error_says_where_and_shows_control_characters() {
    let (code, _, err) = nsh(&["-c", "read(\"/3/0\", #{a: })"]);
    assert_eq!(code, 1);
    assert!(err.contains("column 19: Syntax error: "), "{err}");
    let out = piped("\u{1}\nprint(\"@@after\")\n");
    assert!(out.contains("Unexpected '\\x01'"), "{out}");
    assert!(out.contains("@@after"), "{out}");
}

/// A script helper called with the wrong arguments says how it is called,
/// not only Rhai's "Function not found" with the argument types.
#[test]
fn a_helper_called_wrongly_shows_its_usage() {
    for (code, usage) in [
        ("test(\"x\");", "test(name, || { … })"),
        ("assert_eq(1);", "assert_eq(a, b[, message])"),
        (
            "encode(\"tlv\", 5);",
            "encode(format, #{\"/3/0/1\": value, …})",
        ),
        ("assert_match(1, #{});", "assert_match(message, pattern)"),
    ] {
        let (status, out, err) = nsh(&["-c", code]);
        assert_eq!(status, 1, "{code}: {out}{err}");
        assert!(err.contains(&format!("(usage: {usage})")), "{code}: {err}");
    }
}

/// Values that would mean nothing are refused with what to give.
#[test]
fn a_negative_history_count_and_a_nanosecond_ack_timeout_are_refused() {
    let (code, _, err) = nsh(&["-c", "history(-5)"]);
    assert_eq!(code, 1);
    assert!(err.contains("history: COUNT -5 is negative"), "{err}");
    let (code, _, err) = nsh(&["-c", "set(#{ack_timeout: 1e-9})"]);
    assert_eq!(code, 1);
    assert!(err.contains("below 1 ms"), "{err}");
    let (code, _, err) = nsh(&["-c", "set(#{ack_timeout: 0.01})"]);
    assert_eq!(code, 0, "{err}");
}

/// `get_error` gives what the one-line error does not: the line that
/// failed, and how the command it called is used (the manual's §7.1.2.4.3
/// shows it adding detail, not repeating the line).
#[test]
fn get_error_adds_the_line_and_the_commands_usage() {
    let out = piped("read 0/3\nget_error\n");
    let details = out
        .split("(try \"get_error\" for details)")
        .nth(1)
        .unwrap_or_default();
    assert!(details.contains("the line: read 0/3"), "{out}");
    assert!(
        details.contains("read: not a valid CoAP path: 0/3"),
        "{out}"
    );
    assert!(details.contains("read PATH [ACCEPT]"), "{out}");
    assert!(
        details.contains("example: read /3/0 APPLICATION_LWM2M_TLV"),
        "{out}"
    );
}

/// The README's `CONTENT_FORMAT(…)` and the other option names work as
/// Rhai functions too, checked at once.
#[test]
fn option_names_are_rhai_functions() {
    let (code, out, err) = nsh(&[
        "-c",
        "let o = CONTENT_FORMAT(\"tlv\"); print(`${o.name} ${o.value}`); print(BLOCK2(1, true, 512).size);",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CONTENT_FORMAT 11542"), "{out}");
    assert!(out.contains("512"), "{out}");
    let (code, _, err) = nsh(&["-c", "CONTENT_FORMAT(\"x\")"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("CONTENT_FORMAT: ") && err.contains("tlv"),
        "{err}"
    );
}

/// A builder's error names the method it came from.
#[test]
fn a_builder_id_error_names_its_method() {
    let (code, _, err) = nsh(&["-c", "tlv().add_resource(70000, 1)"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("add_resource: 70000 is not an ID (0..65535)"),
        "{err}"
    );
}

/// Ctrl-C during a wait stops that command alone. The signal also cuts
/// short the read of the socket the waiting command was in (EINTR): that
/// is no receive error, and none is printed (`receive error: Interrupted
/// system call` was, for about one Ctrl-C in three).
#[test]
fn ctrl_c_during_a_wait_prints_no_receive_error() {
    let interrupt = |pid: u32| {
        let sent = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    };
    let mut nsh = LiveNsh::piped(&[]);
    nsh.send_line("listen 0");
    nsh.wait("waiting for a client", 10);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(nsh.pid());
    nsh.wait("stopped waiting", 10);
    // Whether the signal finds a thread inside the socket's read is up to
    // timing: twenty tries, each of which did about once in three.
    for _ in 0..20 {
        nsh.send_line("recv 30");
        std::thread::sleep(Duration::from_millis(150));
        interrupt(nsh.pid());
        nsh.wait("recv: interrupted", 10);
    }
    nsh.send_line("print(\"@@after\")");
    nsh.wait("@@after", 10);
    let (_, out, err) = nsh.finish(10);
    assert!(
        !out.contains("receive error") && !err.contains("receive error"),
        "{out}{err}"
    );
}

/// `process_stats().heap_kb` is what nsh's allocator holds: a soak script
/// sees a value it keeps, and sees it go when dropped.
#[test]
fn process_stats_counts_the_heap() {
    let (status, out, err) = nsh(&[
        "-c",
        "let a = process_stats().heap_kb; let b = blob(8000000); \
         let c = process_stats().heap_kb; b = (); let d = process_stats().heap_kb; \
         print(`@@${c - a >= 7800} ${c - d >= 7800}`);",
    ]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("@@true true"), "{out}{err}");
}

/// `nsh -c LINE` prints what the prompt prints for LINE: the tables of
/// listing commands, a command's taken message, an expression's value;
/// nothing for a command without output. An error still goes to stderr
/// with status 1, as in a script.
#[test]
fn dash_c_prints_what_the_prompt_prints_for_its_line() {
    for (line, shows) in [
        ("clients", "no registered clients\n"),
        ("observations", "no active observations\n"),
        ("clients()", "no registered clients\n[]\n"),
        ("1+1", "2\n"),
        ("sleep 0", ""),
        ("recv 0.01", ""),
        ("history", ""),
    ] {
        let (code, out, err) = nsh(&["-c", line]);
        assert_eq!(code, 0, "{line}: {err}");
        assert_eq!(out, shows, "nsh -c {line:?}");
        assert_eq!(out, piped(format!("{line}\n")), "{line:?} at the prompt");
    }
    // A history with a message in it: its table row, then (a Rhai call)
    // its value, as at the prompt. The peer is a socket that never reads.
    let (_silent, port) = crate::harness::silent_udp_port();
    let line = format!("connect(\"127.0.0.1\", {port}); reset(); history()");
    let (code, out, err) = nsh(&["-c", &line]);
    assert_eq!(code, 0, "{err}");
    let sent = out
        .lines()
        .find(|l| l.starts_with("-> Reset, msg_id = "))
        .unwrap_or_else(|| panic!("no Reset sent in\n{out}"));
    assert!(
        out.ends_with(&format!("   1  127.0.0.1:{port}  {sent}\n{sent}\n")),
        "{out}"
    );
    // A failing command: the error on stderr, status 1, nothing shown.
    let (code, out, err) = nsh(&["-c", "read /3/0"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out, "");
    assert!(
        err.starts_with("error: read: no client to send to"),
        "{err}"
    );
    // `exit CODE` keeps its status.
    let (code, _, _) = nsh(&["-c", "exit 3"]);
    assert_eq!(code, 3);
}

/// `exit` under `nsh -c` says `exiting`, as at the prompt (the original's
/// word for it), in either form, and keeps its status.
#[test]
fn dash_c_exit_says_exiting_as_the_prompt_does() {
    for (line, status) in [("exit 3", 3), ("exit(3)", 3), ("exit", 0), ("exit()", 0)] {
        let (code, out, err) = nsh(&["-c", line]);
        assert_eq!(code, status, "nsh -c {line:?}: {err}");
        assert_eq!(out, "exiting\n", "nsh -c {line:?}");
        if status == 0 {
            assert_eq!(out, piped(format!("{line}\n")), "{line:?} at the prompt");
        }
    }
}

/// An armed `expect` that a message fails after the line's last command
/// (the client's Register arrives while the line computes) fails `nsh -c`
/// at the line's end, as it fails a script at its end: the same report,
/// status 1. The client is wakatiwai.
#[test]
fn dash_c_fails_on_an_expectation_missed_after_its_last_command() {
    let mut nsh = LiveNsh::start(&[
        "-l",
        "0",
        "-c",
        r#"expect("Update"); let t = timestamp(); while t.elapsed < 8.0 {}"#,
    ]);
    let _peer = Peer::node("waka.js", nsh.port, "cli-expect-end", &[]);
    nsh.wait("Expecting: ", 10);
    let (status, out, err) = nsh.finish(60);
    assert!(out.contains("<- Register /rd?"), "{out}\n{err}");
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.starts_with("error: expect: a message did not match what `expect` armed\n")
            && err.contains("kind: expected \"Update\""),
        "{err}"
    );
}
