//! `nsh test --ets`: the shipped OMA LwM2M 1.1 interoperability cases. A
//! case must fail against a client that answers wrongly: the lock-step
//! client tests/peers/liar.py answers one thing wrong at a time (a wrong
//! value, a wrong content format, a missing resource, notifications faster
//! than pmin) and the case that checks it fails, naming it; answering
//! honestly, the same case passes. The whole set also runs against the real
//! wakatiwai client, every case with an outcome and a reason.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{peers_dir, run_nsh};

/// The liar as a `--client` command, with wrong BEHAVIOURS.
fn liar(behaviours: &str) -> String {
    format!(
        "python3 {} 127.0.0.1 {{port}} {{endpoint}} {behaviours}",
        peers_dir().join("liar.py").display()
    )
}

/// A profile file with the Device Object's expected identity.
fn profile(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nsh-ets-{}-{name}.json", std::process::id()));
    std::fs::write(
        &p,
        r#"{"manufacturer": "nsh-test", "model": "liar-model", "serial": "LIAR-0001"}"#,
    )
    .unwrap();
    p
}

/// Runs one case (`--filter`) against the liar; returns (exit code, stdout).
fn case_against_liar(case: &str, behaviours: &str) -> (Option<i32>, String) {
    let prof = profile(&format!("{case}-{}", behaviours.replace(' ', "_")));
    let run = run_nsh(
        &[
            "test",
            "--ets",
            "--filter",
            case,
            "--profile",
            &prof.display().to_string(),
            "--client",
            &liar(behaviours),
            "--register-timeout",
            "20",
        ],
        Duration::from_secs(60),
        |_| {},
    );
    let _ = std::fs::remove_file(&prof);
    (run.status.code(), format!("{}{}", run.stdout, run.stderr))
}

/// The case CASE fails against the liar with BEHAVIOUR, its message saying
/// WHAT; against the honest liar it passes.
fn fails_only_when_lying(case: &str, title: &str, behaviour: &str, what: &str) {
    let (code, out) = case_against_liar(case, behaviour);
    assert_eq!(code, Some(1), "{out}");
    let line = format!("not ok 1 - LightweightM2M-1.1-{case} - {title}\n");
    assert!(out.contains(&line), "expected `{line}` in:\n{out}");
    let message = out
        .split(&line)
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("");
    assert!(
        message.contains(what),
        "the failure should say `{what}`, it says `{message}`\n{out}"
    );

    let (code, out) = case_against_liar(case, "");
    let line = format!("ok 1 - LightweightM2M-1.1-{case} - {title}\n");
    assert!(
        out.contains(&line),
        "honest answers should pass: `{line}` in:\n{out}"
    );
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_wrong_value_fails_the_tlv_read_case() {
    fails_only_when_lying(
        "int-203",
        "Querying basic information in TLV format",
        "wrong-value",
        r#"/3/0/0: expected "nsh-test" (profile manufacturer), got "liar-corp""#,
    );
}

#[test]
fn a_wrong_content_format_fails_the_tlv_read_case() {
    fails_only_when_lying(
        "int-203",
        "Querying basic information in TLV format",
        "wrong-format",
        "asked for TLV (11542), the response is text/plain (0)",
    );
}

#[test]
fn a_missing_resource_fails_the_plain_text_case() {
    fails_only_when_lying(
        "int-201",
        "Querying basic information in Plain Text format",
        "missing",
        "Read /3/0/0: expected 2.05, got 4.04",
    );
}

#[test]
fn notifications_faster_than_pmin_fail_the_observation_case() {
    fails_only_when_lying(
        "int-301",
        "Observation and Notification of parameter values",
        "fast-notify",
        "sooner than pmin 2 s (tolerance 0.5 s)",
    );
}

#[test]
fn a_create_whose_instance_does_not_read_back_fails_the_create_case() {
    fails_only_when_lying(
        "int-1630",
        "Create Portfolio Object Instance",
        "create-lost",
        "Read the created /16/1: Read /16/1: expected 2.05, got 4.04",
    );
}

#[test]
fn a_delete_whose_instance_still_reads_fails_the_delete_case() {
    fails_only_when_lying(
        "int-1635",
        "Delete Portfolio Object Instance",
        "delete-kept",
        "after its Delete (2.02): expected 4.04 Not Found, got 2.05",
    );
}

#[test]
fn no_register_after_a_discarded_update_fails_the_discarded_update_case() {
    fails_only_when_lying(
        "int-105",
        "Discarded Register Update",
        "no-reregister",
        "no Register within 10 s after answering the Update with 4.04 Not Found",
    );
}

/// Runs the bootstrap cases against the liar started as a bootstrap
/// client with BEHAVIOURS; returns (exit code, output).
fn bootstrap_against_liar(behaviours: &str) -> (Option<i32>, String) {
    let prof = std::env::temp_dir().join(format!(
        "nsh-ets-bs-{}-{}.json",
        std::process::id(),
        behaviours.replace(' ', "_")
    ));
    let command = liar(behaviours);
    std::fs::write(&prof, format!(r#"{{"bootstrap_client": "{command}"}}"#)).unwrap();
    let run = run_nsh(
        &[
            "test",
            "--ets",
            "--filter",
            "stdlib/ets/000",
            "--profile",
            &prof.display().to_string(),
        ],
        Duration::from_secs(60),
        |_| {},
    );
    let _ = std::fs::remove_file(&prof);
    (run.status.code(), format!("{}{}", run.stdout, run.stderr))
}

#[test]
fn no_register_after_bootstrap_finish_fails_the_client_initiated_bootstrap_case() {
    let (code, out) = bootstrap_against_liar("bootstrap bs-no-register");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("not ok 1 - LightweightM2M-1.1-int-0 - Client Initiated Bootstrap\n  # ")
            && out.contains("no Register within 30 s after Bootstrap-Finish (2.04)"),
        "{out}"
    );
    let (code, out) = bootstrap_against_liar("bootstrap");
    assert!(
        out.contains("ok 1 - LightweightM2M-1.1-int-0 - Client Initiated Bootstrap\n")
            && out.contains("ok 2 - LightweightM2M-1.1-int-4 - Bootstrap Delete\n"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
}

/// Every case line of a run: `ok`, `skip … # reason` or `not ok` followed
/// by a `  # file:line: message` line.
fn check_outcomes(out: &str) -> Vec<String> {
    let lines: Vec<&str> = out.lines().collect();
    let mut cases = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l
            .strip_prefix("not ok ")
            .filter(|r| r.contains(" - LightweightM2M"))
        {
            let why = lines.get(i + 1).copied().unwrap_or("");
            // The reason: where the case failed, or that the device's
            // process ended under it (the runner says so first).
            assert!(
                (why.starts_with("  # stdlib/ets/") || why.starts_with("  # the client exited ("))
                    && why.len() > 30,
                "a failed case without its reason: {l}\n{why}"
            );
            cases.push(format!("not ok {rest}"));
        } else if let Some(rest) = l
            .strip_prefix("skip ")
            .filter(|r| r.contains(" - LightweightM2M"))
        {
            let reason = rest.split(" # ").nth(1).unwrap_or("");
            assert!(reason.len() > 20, "a skipped case without a reason: {l}");
            cases.push(format!("skip {rest}"));
        } else if let Some(rest) = l
            .strip_prefix("ok ")
            .filter(|r| r.contains(" - LightweightM2M"))
        {
            cases.push(format!("ok {rest}"));
        }
    }
    cases
}

/// Runs the whole set against the client DRIVER (in tests/peers) and
/// checks that every shipped case has an outcome with its reason and that
/// the reads a LwM2M 1.0 client with TLV and text answers pass (checks
/// that do not depend on timing).
fn whole_set_against(driver: &str) -> String {
    let client = format!(
        "node {} 127.0.0.1 {{port}} {{endpoint}}",
        peers_dir().join(driver).display()
    );
    let run = run_nsh(
        &["test", "--ets", "--jobs", "3", "--client", &client],
        Duration::from_secs(240),
        |_| {},
    );
    let out = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.status.code(), Some(1), "{out}");
    let cases = check_outcomes(&out);
    // Every shipped case ran (none lost to a script error).
    let listed = run_nsh(
        &["test", "--ets", "--list"],
        Duration::from_secs(20),
        |_| {},
    );
    let names = listed
        .stdout
        .lines()
        .filter(|l| l.starts_with("  LightweightM2M"))
        .count();
    assert_eq!(cases.len(), names, "{out}");
    for ok in [
        "LightweightM2M-1.1-int-101 - Initial Registration",
        "LightweightM2M-1.1-int-201 - Querying basic information in Plain Text format",
        "LightweightM2M-1.1-int-203 - Querying basic information in TLV format",
        "LightweightM2M-1.1-int-222 - Read on Object",
        "LightweightM2M-1.1-int-223 - Read on Object Instance",
        "LightweightM2M-1.1-int-224 - Read on Resource",
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.starts_with("ok ") && c.ends_with(ok)),
            "{ok} should pass against {driver}:\n{out}"
        );
    }
    // Neither refuses the Security Object with 4.01.
    assert!(
        out.contains("Read /0: expected 4.01 Unauthorized for the Security Object, got 4.04"),
        "{out}"
    );
    out
}

#[test]
fn the_whole_set_runs_against_wakatiwai_each_case_with_an_outcome() {
    let out = whole_set_against("waka.js");
    assert!(
        out.contains("LightweightM2M-1.1-int-231 - Querying basic information in SenML JSON format # the device registered as LwM2M 1.0; SenML JSON is LwM2M 1.1"),
        "{out}"
    );
    // A read-only resource written: 2.04 where 4.05 is due.
    assert!(
        out.contains(
            "Write /1/0/0 (Short Server ID, read-only): expected 4.05 Method Not Allowed, got 2.04"
        ),
        "{out}"
    );
}

#[test]
fn the_whole_set_runs_against_coap_node_each_case_with_an_outcome() {
    let out = whole_set_against("coapnode.js");
    // Its missing Disable resource is optional: skipped, not failed.
    assert!(
        out.contains("skip 1 - LightweightM2M-1.1-int-103 - Deregistration # the device has no Disable resource /1/0/4 (4.04); it is optional"),
        "{out}"
    );
    // The partial update stops it; the cases after it say so.
    assert!(
        out.contains("# the device no longer answers a CoAP ping: an earlier case stopped it"),
        "{out}"
    );
}

/// Runs the cases FILTER selects against wakatiwai with a profile that
/// names its bootstrap command and the object it can create instances in.
fn against_wakatiwai_with_profile(filter: &str) -> String {
    let waka = peers_dir().join("waka.js").display().to_string();
    let prof = std::env::temp_dir().join(format!(
        "nsh-ets-waka-{}-{}.json",
        std::process::id(),
        filter.replace('/', "_")
    ));
    std::fs::write(
        &prof,
        format!(
            r#"{{"create_object": 3303, "create_resource": 5750, "bootstrap_client": "BOOTSTRAP=1 node {waka} 127.0.0.1 {{port}} {{endpoint}}"}}"#
        ),
    )
    .unwrap();
    let run = run_nsh(
        &[
            "test",
            "--ets",
            "--filter",
            filter,
            "--profile",
            &prof.display().to_string(),
            "--client",
            &format!("node {waka} 127.0.0.1 {{port}} {{endpoint}}"),
        ],
        Duration::from_secs(60),
        |_| {},
    );
    let _ = std::fs::remove_file(&prof);
    let out = format!("{}{}", run.stdout, run.stderr);
    check_outcomes(&out);
    out
}

#[test]
fn wakatiwai_bootstraps_from_nsh_in_the_bootstrap_cases() {
    let out = against_wakatiwai_with_profile("stdlib/ets/000");
    assert!(
        out.contains("ok 1 - LightweightM2M-1.1-int-0 - Client Initiated Bootstrap\n"),
        "{out}"
    );
    // It refuses the Bootstrap-Delete of "/" (its ACLs applied to the
    // Bootstrap-Server), then takes the Writes and the Finish.
    assert!(
        out.contains("Bootstrap-Delete / (sent in int-0's bootstrap): expected 2.02, got 4.01"),
        "{out}"
    );
    assert!(
        out.contains("skip 3 - LightweightM2M-1.1-int-5 - Server Initiated Bootstrap # the device registered as LwM2M 1.0"),
        "{out}"
    );
}

#[test]
fn without_a_bootstrap_client_the_bootstrap_cases_skip_saying_why() {
    let run = run_nsh(
        &["test", "--ets", "--filter", "int-0"],
        Duration::from_secs(20),
        |_| {},
    );
    assert_eq!(run.status.code(), Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("skip 1 - LightweightM2M-1.1-int-0 - Client Initiated Bootstrap # no bootstrap client: give the profile a `bootstrap_client` command"),
        "{}",
        run.stdout
    );
}

#[test]
fn wakatiwai_creates_instances_but_refuses_to_delete_them() {
    let out = against_wakatiwai_with_profile("stdlib/ets/1630");
    assert!(
        out.contains("Delete the created /3303/2: expected 2.02, got 4.01"),
        "{out}"
    );
    assert!(
        out.contains("Delete /3303/3: expected 2.02, got 4.01"),
        "{out}"
    );
}

#[test]
fn without_a_client_every_script_is_skipped_saying_why() {
    let run = run_nsh(&["test", "--ets"], Duration::from_secs(60), |_| {});
    assert_eq!(run.status.code(), Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("skip - stdlib/ets/200_device_management.rhai # no device registered: run `nsh test --ets --client COMMAND`"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_profile_is_refused_naming_the_file() {
    let p = std::env::temp_dir().join(format!("nsh-ets-bad-{}.json", std::process::id()));
    std::fs::write(&p, "{\"manufacturer\": ").unwrap();
    let run = run_nsh(
        &["test", "--ets", "--profile", &p.display().to_string()],
        Duration::from_secs(20),
        |_| {},
    );
    let _ = std::fs::remove_file(&p);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("--profile: {}", p.display())),
        "{}",
        run.stderr
    );
}
