//! JUnit XML reports of a script run (`nsh --junit FILE SCRIPT`, one
//! testsuite) or of `nsh test --junit FILE` (one testsuite per script), for
//! CI systems that show test results.

use std::path::Path;
use std::time::Duration;

use super::{RunError, TestOutcome};
use crate::report::escape_markup as escape;

/// The report: one test case per `test(…)` block, plus one for the script
/// itself when it failed outside them (or had none).
pub fn report(
    script: &Path,
    tests: &[TestOutcome],
    error: Option<&RunError>,
    total: Duration,
) -> String {
    let name = script
        .file_stem()
        .map_or("script".into(), |s| s.to_string_lossy().into_owned());
    document(&[suite(&name, script, tests, error, total, None)])
}

/// A whole report from testsuites made by [`suite`].
pub fn document(suites: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n{}</testsuites>\n",
        suites.concat()
    )
}

/// One script's testsuite, named `name` (`x/read`; its cases' classname
/// is the same with dots, `x.read`): a test case per `test(…)` block
/// (failed, skipped, with the note on unread messages as its output), plus
/// one for the script itself when it failed or was skipped outside them (or
/// had none); `output` (a client's, the script's) as the suite's
/// system-out.
pub fn suite(
    name: &str,
    script: &Path,
    tests: &[TestOutcome],
    error: Option<&RunError>,
    total: Duration,
    output: Option<&str>,
) -> String {
    let class = name.replace(['/', '\\'], ".");
    let mut cases = String::new();
    let (mut failures, mut skipped, mut count) = (0, 0, 0);
    let mut case = |title: &str,
                    time: Duration,
                    failure: Option<&str>,
                    skip: Option<&str>,
                    note: Option<&str>| {
        count += 1;
        cases.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&class),
            escape(title),
            time.as_secs_f64()
        ));
        let mut inner = String::new();
        if let Some(f) = failure {
            failures += 1;
            inner.push_str(&format!(
                "      <failure message=\"{}\">{}</failure>\n",
                escape(f.lines().next().unwrap_or("")),
                escape(f)
            ));
        } else if let Some(reason) = skip {
            skipped += 1;
            inner.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                escape(reason)
            ));
        }
        if let Some(n) = note {
            inner.push_str(&format!("      <system-out>{}</system-out>\n", escape(n)));
        }
        if inner.is_empty() {
            cases.push_str("/>\n");
        } else {
            cases.push_str(&format!(">\n{inner}    </testcase>\n"));
        }
    };
    for t in tests {
        let notes: Vec<&str> = t
            .note
            .iter()
            .chain(&t.left_active)
            .map(String::as_str)
            .collect();
        let notes = notes.join("\n");
        case(
            &t.name,
            t.duration,
            t.failure.as_deref(),
            t.skipped.as_deref(),
            Some(notes.as_str()).filter(|n| !n.is_empty()),
        );
    }
    let script_name = script.display().to_string();
    match error {
        Some(RunError::Script(e)) => case(&script_name, total, Some(e), None, None),
        Some(RunError::Skipped(reason)) => case(&script_name, total, None, Some(reason), None),
        Some(e @ RunError::Exit { .. }) => {
            case(&script_name, total, Some(&e.to_string()), None, None);
        }
        _ if tests.is_empty() => case(&script_name, total, None, None, None),
        _ => {}
    }
    let out = output
        .filter(|o| !o.is_empty())
        .map(|o| format!("    <system-out>{}</system-out>\n", escape(o)))
        .unwrap_or_default();
    format!(
        "  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">\n{cases}{out}  </testsuite>\n",
        escape(name),
        total.as_secs_f64()
    )
}
