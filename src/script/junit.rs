//! JUnit XML reports of a script run (`nsh --junit FILE SCRIPT`), for CI
//! systems that show test results.

use std::path::Path;
use std::time::Duration;

use super::{RunError, TestOutcome};

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The report: one test case per `test(…)` block, plus one for the script
/// itself when it failed outside them (or had none).
pub fn report(
    script: &Path,
    tests: &[TestOutcome],
    error: Option<&RunError>,
    total: Duration,
) -> String {
    let suite = script
        .file_stem()
        .map_or("script".into(), |s| s.to_string_lossy().into_owned());
    let mut cases = String::new();
    let mut failures = 0;
    let mut count = 0;
    for t in tests {
        count += 1;
        cases.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&suite),
            escape(&t.name),
            t.duration.as_secs_f64()
        ));
        match &t.failure {
            None => cases.push_str("/>\n"),
            Some(f) => {
                failures += 1;
                let first = f.lines().next().unwrap_or("");
                cases.push_str(&format!(
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(first),
                    escape(f)
                ));
            }
        }
    }
    let script_failed = match error {
        Some(RunError::Script(e)) => Some(e),
        _ => None,
    };
    if tests.is_empty() || script_failed.is_some() {
        count += 1;
        let name = script.display().to_string();
        match script_failed {
            None => cases.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"/>\n",
                escape(&suite),
                escape(&name),
                total.as_secs_f64()
            )),
            Some(e) => {
                failures += 1;
                cases.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(&suite),
                    escape(&name),
                    total.as_secs_f64(),
                    escape(e.lines().next().unwrap_or("")),
                    escape(e)
                ));
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failures}\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        escape(&suite),
        total.as_secs_f64()
    )
}
