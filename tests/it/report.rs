//! `nsh test --json FILE --report DIR --junit FILE`: the reports of a run,
//! each read back by a real consumer — the JSON lines by serde_json, the
//! JUnit XML by Python's `junitparser`, the HTML page rendered by headless
//! Chromium (screenshot and DOM). The device is a raw UDP socket that drops
//! the first GET (so nsh retransmits it) and answers only once the first
//! case's line was printed (so case lines are shown as cases end).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use nsh::coap::{Code, Message, Type, udp};

use crate::harness::run_nsh;

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nsh-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium (Debian's `chromium`, installed by tests/setup.sh)
/// with a throw-away profile and nothing fetched from the network.
pub fn chromium(profile: &Path, args: &[&str], page: &Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (bash tests/setup.sh installs it)")
}

/// Decodes an 8-bit RGB/RGBA PNG (Python's zlib, every filter type) and
/// prints how many pixels differ from the top-left one, and how many
/// distinct colours there are.
const PNG_STATS: &str = r#"
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
i, idat = 8, b''
while i < len(b):
    n, t = struct.unpack('>I4s', b[i:i + 8]); d = b[i + 8:i + 8 + n]; i += 12 + n
    if t == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', d[:10])
    elif t == b'IDAT': idat += d
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, pix, at = bytearray(stride), [], 0
for y in range(h):
    f = raw[at]; line = bytearray(raw[at + 1:at + 1 + stride]); at += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; up = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + up) & 255
        elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
        elif f == 4:
            p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
    pix.extend(bytes(line[k:k + 3]) for k in range(0, stride, bpp)); prev = line
print(sum(1 for p in pix if p != pix[0]), len(set(pix)))
"#;

/// Reads a JUnit file with junitparser: one line per case,
/// `suite|case|result|message`, then `OUT|suite|system-out` per suite.
const JUNIT_READ: &str = r#"
import sys
from junitparser import JUnitXml, SystemOut
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    for case in suite:
        res = case.result
        kind = 'passed' if not res else type(res[0]).__name__
        msg = res[0].message if res else ''
        print('|'.join([suite.name, case.name, kind, msg or '']))
    out = suite.child(SystemOut)
    print('OUT|' + suite.name + '|' + ((out.text if out is not None else '') or '').replace('\n', '\\n'))
"#;

pub fn python(code: &str, arg: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(arg)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn reports_show_every_message_and_case_and_are_read_back_by_real_consumers() {
    let dir = scratch("all");
    let device = UdpSocket::bind("127.0.0.1:0").unwrap();
    device
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = device.local_addr().unwrap().port();
    let (seen_first, first_printed) = mpsc::channel::<()>();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        // The first GET is dropped: nsh retransmits it.
        let (_, _) = device.recv_from(&mut buf).unwrap();
        let (n, from) = device.recv_from(&mut buf).unwrap();
        first_printed
            .recv_timeout(Duration::from_secs(20))
            .expect("case 1's line was not printed before case 2 ended");
        let req = udp::decode(&buf[..n]).unwrap();
        let mut r = Message::new(Type::Acknowledgement, Code::CONTENT, req.message_id);
        r.token = req.token.clone();
        r.payload = b"hello".to_vec();
        device.send_to(&udp::encode(&r), from).unwrap();
    });
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(
        cases.join("device.rhai"),
        format!(
            r#"connect("127.0.0.1", {port});
test("first", || {{ assert(true); }});
test("get after a retransmission", || {{
    let r = coap_get("/3/0", #{{timeout_s: 20.0}});
    assert_eq(r.text, "hello");
}});
test("fails on purpose", || {{
    assert_eq(1 + 1, 3);
}});
test("skipped", || {{ skip("not this time"); }});
"#
        ),
    )
    .unwrap();
    let (json, html, xml) = (
        dir.join("run.jsonl"),
        dir.join("html"),
        dir.join("junit.xml"),
    );
    let mut seen = Some(seen_first);
    let run = run_nsh(
        &[
            "test",
            &cases.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--report",
            &html.display().to_string(),
            "--junit",
            &xml.display().to_string(),
            "--timeout",
            "60",
        ],
        Duration::from_secs(90),
        |line| {
            if line == "ok 1 - first"
                && let Some(s) = seen.take()
            {
                let _ = s.send(());
            }
        },
    );
    answer.join().unwrap();
    let out = &run.stdout;
    assert_eq!(run.status.code(), Some(1), "{out}{}", run.stderr);
    assert!(
        out.contains(
            "ok 1 - first\nok 2 - get after a retransmission\nnot ok 3 - fails on purpose\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 1 failed, 1 skipped\n"), "{out}");

    // JSON lines: every message, then each case result in place.
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let messages: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["type"] == "message").collect();
    let gets: Vec<&&serde_json::Value> = messages
        .iter()
        .filter(|v| v["direction"] == "sent" && v["summary"].as_str().unwrap().contains("/3/0"))
        .collect();
    assert_eq!(gets.len(), 2, "{text}");
    assert_eq!(gets[0]["mark"], "plain", "{text}");
    assert_eq!(gets[1]["mark"], "retransmission", "{text}");
    assert_eq!(gets[0]["hex"], gets[1]["hex"]);
    assert_eq!(gets[0]["case"], 2);
    assert_eq!(gets[0]["peer"], format!("127.0.0.1:{port}"));
    assert!(gets[0]["time"].as_f64().unwrap() > 1.0e9);
    let content = messages
        .iter()
        .find(|v| v["direction"] == "received")
        .expect("the Content");
    assert!(
        content["summary"].as_str().unwrap().starts_with("Content"),
        "{content}"
    );
    assert!(content["hex"].as_str().unwrap().ends_with("ff68656c6c6f"));
    let results: Vec<(String, String)> = lines
        .iter()
        .filter(|v| v["type"] == "case")
        .map(|v| {
            (
                v["name"].as_str().unwrap().into(),
                v["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("first".into(), "passed".into()),
            ("get after a retransmission".into(), "passed".into()),
            ("fails on purpose".into(), "failed".into()),
            ("skipped".into(), "skipped".into()),
        ]
    );
    // Case 2's result follows its messages.
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| lines.iter().position(pred).unwrap();
    assert!(at(&|v| v["type"] == "case" && v["case"] == 2) > at(&|v| v["direction"] == "received"));

    // JUnit, read by junitparser: cases, the failure with its location, the
    // transcript as system-out.
    let parsed = python(JUNIT_READ, &xml);
    for line in [
        "device|first|passed|".to_string(),
        "device|get after a retransmission|passed|".to_string(),
        format!(
            "device|fails on purpose|Failure|{}:8:5: assert_eq failed",
            cases.join("device.rhai").display()
        ),
        "device|skipped|Skipped|not this time".to_string(),
    ] {
        assert!(
            parsed.lines().any(|l| l == line),
            "missing {line:?} in\n{parsed}"
        );
    }
    assert!(
        parsed.contains("OUT|device|") && parsed.contains("-> Read /3/0"),
        "{parsed}"
    );

    // HTML: Chromium renders it (not blank) and its DOM holds the arrows.
    let page = html.join("index.html");
    let shot = dir.join("shot.png");
    let profile = dir.join("chromium");
    let s = chromium(
        &profile,
        &[&format!("--screenshot={}", shot.display())],
        &page,
    );
    assert!(shot.exists(), "{}", String::from_utf8_lossy(&s.stderr));
    let stats = python(PNG_STATS, &shot);
    let v: Vec<usize> = stats
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(v[0] > 20_000 && v[1] > 16, "a blank page? {stats}");
    let dom = chromium(&profile, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("2 passed, 1 failed, 1 skipped"), "{dom}");
    let arrows: Vec<&str> = dom.split("<g class=\"msg ").skip(1).collect();
    assert_eq!(arrows.len(), 3, "{dom}");
    assert!(
        arrows[0].starts_with("sent\"") && arrows[0].contains(">Read /3/0<"),
        "{}",
        arrows[0]
    );
    assert!(
        arrows[1].starts_with("sent retransmission\"")
            && arrows[1].contains(">Read /3/0 (retransmission)<"),
        "{}",
        arrows[1]
    );
    assert!(
        arrows[2].starts_with("received\"") && arrows[2].contains(">Content"),
        "{}",
        arrows[2]
    );
    // Each arrow's decoded message is on the page, shown on click.
    let detail = arrows[2].split("data-detail=\"").nth(1).unwrap();
    let id = &detail[..detail.find('"').unwrap()];
    let block = dom
        .split(&format!("id=\"{id}\" hidden=\"\">"))
        .nth(1)
        .expect(id);
    assert!(block.contains("hello"), "{block}");
    // The failure is marked in case 3's chart.
    let case3 = dom.split("id=\"c-0-3\"").nth(1).unwrap();
    let case3 = &case3[..case3.find("</section>").unwrap()];
    assert!(case3.contains("✗ failed here:"), "{case3}");
    assert!(
        !dom.contains("http://") || !dom.contains("src=\"http"),
        "fetches nothing"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Scripts without cases, and a failure outside the cases, are results of
/// their own in the JSON lines and the HTML table, as in the JUnit file.
#[test]
fn scripts_without_cases_and_failures_outside_them_are_reported() {
    let dir = scratch("whole");
    std::fs::write(dir.join("a_plain.rhai"), "let x = 1 + 1;\n").unwrap();
    std::fs::write(
        dir.join("b_broken.rhai"),
        "test(\"fine\", || {});\nthrow \"set-up broke\";\n",
    )
    .unwrap();
    let (json, html) = (dir.join("out.jsonl"), dir.join("html"));
    let run = run_nsh(
        &[
            "test",
            &dir.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--report",
            &html.display().to_string(),
        ],
        Duration::from_secs(30),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(1), "{}{}", run.stdout, run.stderr);
    let cases: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "case")
        .collect();
    let shown: Vec<(String, String)> = cases
        .iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap();
            let name = name.rsplit('/').next().unwrap().to_string();
            (name, v["status"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("a_plain.rhai".into(), "passed".into()),
            ("fine".into(), "passed".into()),
            ("b_broken.rhai".into(), "failed".into()),
        ]
    );
    assert!(
        cases[2]["message"]
            .as_str()
            .unwrap()
            .contains("set-up broke")
    );
    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(page.contains("2 passed, 1 failed, 0 skipped"), "{page}");
    let _ = std::fs::remove_dir_all(&dir);
}
