//! `scripts/pgo-rustc`, the rustc wrapper of `.cargo/config.toml`: the
//! profile of nsh's request path goes to optimised compilations by the
//! compiler it was made with, and to nothing else. Played with stand-in
//! compilers (shell scripts that print their arguments and a version).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::repo;

/// A stand-in compiler at `dir/name` that answers `-vV` with `version` and
/// otherwise prints its arguments, one per line.
fn stand_in(dir: &Path, name: &str, version: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = -vV ] || [ \"$2\" = -vV ]; then printf '%s\\n' 'rustc 0' '{version}'; exit 0; fi\nfor a in \"$@\"; do echo \"$a\"; done\n"
    );
    std::fs::write(&path, script).expect("write the stand-in");
    Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .expect("chmod");
    path
}

/// What the wrapper passed on to `compiler ARGS`.
fn passed(compiler: &[&Path], args: &[&str]) -> Vec<String> {
    let out = Command::new(repo().join("scripts/pgo-rustc"))
        .args(compiler)
        .args(args)
        .output()
        .expect("run scripts/pgo-rustc");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn profile_flag(args: &[String]) -> Option<&String> {
    args.iter().find(|a| a.starts_with("-Cprofile-use="))
}

#[test]
fn the_profile_goes_to_optimised_code_of_the_compiler_it_was_made_with_only() {
    let recorded = std::fs::read_to_string(repo().join("pgo/rustc-version"))
        .expect("pgo/rustc-version is committed");
    let dir = std::env::temp_dir().join(format!("nsh-pgo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let same = stand_in(&dir, "rustc", recorded.trim_end());
    let other = stand_in(
        &dir,
        "rustc-other",
        "release: 0.0.1-nightly\nLLVM version: 1.0.0",
    );

    let optimised = ["--crate-name", "x", "-C", "opt-level=3", "src/lib.rs"];
    let args = passed(&[&same], &optimised);
    let flag = profile_flag(&args).expect("the profile for an optimised build");
    let path = flag.trim_start_matches("-Cprofile-use=");
    assert!(Path::new(path).is_absolute(), "{path}");
    assert!(
        Path::new(path).is_file(),
        "the packed profile is unpacked: {path}"
    );
    assert_eq!(
        &args[..optimised.len()],
        &optimised,
        "the rest as cargo asked"
    );

    // Behind clippy-driver (cargo passes the workspace wrapper first).
    let clippy = stand_in(&dir, "clippy-driver", "release: 0");
    let args = passed(&[&clippy, &same], &optimised);
    assert!(profile_flag(&args).is_some(), "{args:?}");

    // A debug build, another compiler, an instrumented or sanitized build:
    // exactly what cargo asked.
    for (compiler, args) in [
        (&same, vec!["--crate-name", "x", "-C", "opt-level=0"]),
        (&other, optimised.to_vec()),
        (
            &same,
            vec!["-C", "opt-level=3", "-Cprofile-generate=/tmp/p"],
        ),
        (&same, vec!["-C", "opt-level=3", "-Zsanitizer=address"]),
    ] {
        let got = passed(&[compiler], &args);
        assert_eq!(got, args, "{}", compiler.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
