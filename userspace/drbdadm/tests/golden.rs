//! Compares our drbdadm with drbdadm-84: every case in cases.txt runs our
//! binary and checks its stdout and exit code against golden/NAME.txt,
//! recorded from drbd-utils' drbdadm-84 by record-golden.sh.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    name: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(tests_dir().join("cases.txt")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(3, '|').collect();
        assert_eq!(parts.len(), 3, "bad case line: {line}");
        let env = parts[1]
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        out.push(Case {
            name: parts[0].trim().to_owned(),
            env,
            args: parts[2].split_whitespace().map(String::from).collect(),
        });
    }
    out
}

/// Our output, normalised like record-golden.sh normalises drbdadm-84's.
fn run_ours(case: &Case, configs: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drbdadm"));
    cmd.current_dir(tests_dir())
        .args(&case.args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("__DRBD_NODE__", "alpha")
        .env("DRBDSETUP", "drbdsetup")
        .env("DRBDMETA", "drbdmeta");
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout)
        .replace("./fake-drbdsetup", "drbdsetup")
        .replace(configs, "@CONFIGS@");
    format!("{stdout}[exit {code}]\n")
}

fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            out.push_str(&format!(
                "  line {}:\n    drbdadm-84: {:?}\n    ours:       {:?}\n",
                i + 1,
                x,
                y
            ));
        }
    }
    out
}

#[test]
fn golden_outputs_match_drbdadm_84() {
    let configs = std::fs::canonicalize(tests_dir().join("configs"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let cases = cases();
    assert!(cases.len() > 100, "cases.txt lost its cases");
    let mut failures = Vec::new();
    for case in &cases {
        let golden = tests_dir()
            .join("golden")
            .join(format!("{}.txt", case.name));
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}; run tests/record-golden.sh", golden.display()));
        let actual = run_ours(case, &configs);
        if expected != actual {
            failures.push(format!(
                "{} ({}):\n{}",
                case.name,
                case.args.join(" "),
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
