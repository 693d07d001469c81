//! The README's CI recipe end to end: `nsh test examples/ci` with
//! `--client` starting the real wakatiwai and coap-node clients, writing
//! JUnit, JSON lines, the HTML report and pcapng captures, each read back
//! by a real consumer (junitparser, serde_json, headless Chromium, tshark).

use std::process::Command;
use std::time::Duration;

use crate::harness::{peers_dir, repo, run_nsh};
use crate::report::{chromium, python, scratch};

/// Case results per suite, as junitparser reads them.
const JUNIT_CASES: &str = r#"
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        print(suite.name, 'passed' if not case.result else type(case.result[0]).__name__, case.name, sep='|')
"#;

fn run_ci_with(driver: &str) {
    let dir = scratch(&format!("ci-{driver}"));
    let client = format!(
        "TEMP_MS=300 node {} 127.0.0.1 {{port}} {{endpoint}}",
        peers_dir().join(format!("{driver}.js")).display()
    );
    let (xml, json, html, pcap) = (
        // Directories that do not exist yet: nsh creates them.
        dir.join("out/junit.xml"),
        dir.join("out/messages.jsonl"),
        dir.join("report"),
        dir.join("pcap"),
    );
    let examples = repo().join("examples/ci").display().to_string();
    let run = run_nsh(
        &[
            "test",
            &examples,
            "--client",
            &client,
            "--junit",
            &xml.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--report",
            &html.display().to_string(),
            "--pcap",
            &pcap.display().to_string(),
            "--timeout",
            "60",
        ],
        Duration::from_secs(180),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.ends_with("6 passed, 0 failed, 0 skipped\n"),
        "{}",
        run.stdout
    );

    // JUnit: two suites, six passed cases.
    let cases = python(JUNIT_CASES, &xml);
    let lines: Vec<&str> = cases.lines().collect();
    assert_eq!(lines.len(), 6, "{cases}");
    assert!(
        lines.iter().all(|l| l.split('|').nth(1) == Some("passed")),
        "{cases}"
    );
    assert!(cases.contains("device|passed|reads /3/0 as TLV"), "{cases}");
    assert!(
        cases.contains("observe|passed|notifies a temperature twice, then cancels"),
        "{cases}"
    );

    // JSON lines: the registration, the observation's notifications, six
    // case results.
    let text = std::fs::read_to_string(&json).unwrap();
    let values: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&serde_json::Value> =
        values.iter().filter(|v| v["type"] == "message").collect();
    let summary = |v: &serde_json::Value| v["summary"].as_str().unwrap_or("").to_string();
    assert!(
        messages
            .iter()
            .any(|v| summary(v).starts_with("Register /rd?")),
        "{text}"
    );
    assert!(
        messages
            .iter()
            .filter(|v| summary(v).starts_with("Notify"))
            .count()
            >= 2,
        "{text}"
    );
    assert_eq!(
        values
            .iter()
            .filter(|v| v["type"] == "case" && v["status"] == "passed")
            .count(),
        6
    );

    // pcapng: tshark decodes as many CoAP messages as the JSON lines hold.
    let mut captured = 0;
    for script in ["device", "observe"] {
        let file = pcap.join(format!(
            "{}.pcapng",
            repo()
                .join(format!("examples/ci/{script}.rhai"))
                .display()
                .to_string()
                .trim_start_matches("./")
                .replace('/', "_")
        ));
        // Every port the device used (coap-node de-registers from another).
        let mut decode = Vec::new();
        for v in &messages {
            if v["script"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{script}.rhai"))
                && let Some(port) = v["peer"].as_str().and_then(|p| p.rsplit(':').next())
            {
                decode.push("-d".to_string());
                decode.push(format!("udp.port=={port},coap"));
            }
        }
        let shown = Command::new("tshark")
            .arg("-r")
            .arg(&file)
            .args(&decode)
            .args(["-Y", "coap", "-T", "fields", "-e", "coap.code"])
            .output()
            .expect("tshark");
        assert!(
            shown.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&shown.stderr)
        );
        captured += String::from_utf8_lossy(&shown.stdout).lines().count();
    }
    assert_eq!(captured, messages.len());

    // HTML: six rows, one arrow per message, not blank.
    let page = html.join("index.html");
    let profile = dir.join("chromium");
    let dom = chromium(&profile, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("6 passed, 0 failed, 0 skipped"), "{dom}");
    assert_eq!(dom.matches("<tr class=\"passed\">").count(), 6);
    assert_eq!(dom.matches("<g class=\"msg ").count(), messages.len());
    assert!(
        dom.contains("auto-answer\""),
        "the Register's answer: {dom}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ci_examples_pass_with_wakatiwai_and_every_report_reads_back() {
    run_ci_with("waka");
}

#[test]
fn the_ci_examples_pass_with_coap_node_and_every_report_reads_back() {
    run_ci_with("coapnode");
}
