//! Running the helpers for real (no dry run): fake drbdsetup/drbdmeta
//! scripts record their command lines and fail on request, so these tests
//! check the order of execution, error handling and the fallbacks to
//! drbdmeta.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Loopback addresses, so that the IP check passes on any machine.
const CONF: &str = "resource r0 {
	net { protocol C; }
	disk { resync-rate 10M; }
	handlers { fence-peer \"echo fence $DRBD_RESOURCE $DRBD_PEER $DRBD_PEER_ADDRESS $DRBD_MINOR >> log\"; }
	on alpha {
		device /dev/drbd0;
		disk /dev/vdb;
		meta-disk internal;
		address 127.0.0.1:7789;
	}
	on beta {
		device /dev/drbd0;
		disk /dev/vdb;
		meta-disk internal;
		address 127.0.0.2:7789;
	}
}
";

/// Logs `TOOL args` and exits with $FAIL_<tool>_<subcommand> (default 0);
/// `show` prints the file $SHOW if set.
const FAKE: &str = "#!/bin/sh
tool=$(basename \"$0\")
echo \"$tool $*\" >> log
sub=$1
[ \"$tool\" = drbdmeta ] && sub=$5
[ \"$sub\" = show ] && [ -n \"$SHOW\" ] && cat \"$SHOW\"
eval code=\\${FAIL_${tool}_$(echo \"$sub\" | tr - _):-0}
exit $code
";

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "drbdadm-exec-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("t.conf"), CONF).unwrap();
        for tool in ["drbdsetup", "drbdmeta"] {
            let p = d.join(tool);
            std::fs::write(&p, FAKE).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Dir(d)
    }

    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let _ = std::fs::remove_file(self.path("log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drbdadm"));
        cmd.current_dir(&self.0)
            .arg("-c")
            .arg("t.conf")
            .args(args)
            .env("__DRBD_NODE__", "alpha")
            .env("DRBDSETUP", self.path("drbdsetup"))
            .env("DRBDMETA", self.path("drbdmeta"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let log = std::fs::read_to_string(self.path("log")).unwrap_or_default();
        (out.status.code().unwrap_or(-1), log)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn up_runs_every_stage() {
    let d = Dir::new();
    let (code, log) = d.run(&["up", "r0"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        lines(&log),
        [
            "drbdsetup new-resource r0",
            "drbdsetup new-minor r0 0 0",
            "drbdmeta 0 v08 /dev/vdb internal apply-al",
            "drbdsetup attach 0 /dev/vdb /dev/vdb internal --resync-rate=10M",
            "drbdsetup connect r0 ipv4:127.0.0.1:7789 ipv4:127.0.0.2:7789 --protocol=C",
        ]
    );
}

#[test]
fn a_failed_prerequisite_skips_the_rest() {
    let d = Dir::new();
    let (code, log) = d.run(&["up", "r0"], &[("FAIL_drbdsetup_new_minor", "10")]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&log),
        ["drbdsetup new-resource r0", "drbdsetup new-minor r0 0 0"]
    );
}

#[test]
fn a_failed_attach_still_stops_before_connect() {
    let d = Dir::new();
    let (code, log) = d.run(&["up", "r0"], &[("FAIL_drbdsetup_attach", "10")]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&log).last(),
        Some(&"drbdsetup attach 0 /dev/vdb /dev/vdb internal --resync-rate=10M")
    );
}

#[test]
fn helper_exit_codes_of_20_and_more_abort() {
    let d = Dir::new();
    let (code, _) = d.run(&["primary", "r0"], &[("FAIL_drbdsetup_primary", "11")]);
    assert_eq!(code, 11);
    let (code, _) = d.run(&["primary", "r0"], &[("FAIL_drbdsetup_primary", "20")]);
    assert_eq!(code, 20);
}

#[test]
fn dstate_falls_back_to_drbdmeta() {
    let d = Dir::new();
    let (code, log) = d.run(&["dstate", "r0"], &[]);
    assert_eq!((code, lines(&log)), (0, vec!["drbdsetup dstate 0"]));
    let (code, log) = d.run(&["dstate", "r0"], &[("FAIL_drbdsetup_dstate", "10")]);
    assert_eq!(code, 0, "drbdmeta answered");
    assert_eq!(
        lines(&log),
        [
            "drbdsetup dstate 0",
            "drbdmeta 0 v08 /dev/vdb internal dstate"
        ]
    );
}

#[test]
fn outdate_of_a_primary_is_refused() {
    let d = Dir::new();
    let (code, log) = d.run(&["outdate", "r0"], &[("FAIL_drbdsetup_outdate", "17")]);
    assert_eq!((code, lines(&log)), (17, vec!["drbdsetup outdate 0"]));
}

#[test]
fn adjust_compares_with_the_kernel() {
    let d = Dir::new();
    let show = "resource r0 {\n    options {\n    }\n    net {\n    }\n    _this_host {\n        volume 0 {\n            device\t\t\tminor 0;\n            disk\t\t\t\"/dev/vdb\";\n            meta-disk\t\t\tinternal;\n            disk {\n                resync-rate     \t10240k; # bytes/second\n            }\n        }\n    }\n}\n";
    std::fs::write(d.path("show.txt"), show).unwrap();
    let (code, log) = d.run(&["adjust", "r0"], &[("SHOW", "show.txt")]);
    assert_eq!(code, 0);
    assert_eq!(
        lines(&log),
        [
            "drbdsetup show r0",
            "drbdsetup connect r0 ipv4:127.0.0.1:7789 ipv4:127.0.0.2:7789 --protocol=C",
        ]
    );
    // nothing configured: everything
    let (_, log) = d.run(&["adjust", "r0"], &[]);
    assert_eq!(lines(&log).len(), 6);
}

#[test]
fn kernel_helpers_run_the_handler() {
    let d = Dir::new();
    let (code, log) = d.run(&["fence-peer", "r0"], &[]);
    assert_eq!(code, 0);
    assert_eq!(log, "fence r0 beta 127.0.0.2 0\n");
    let (code, log) = d.run(&["split-brain", "minor-0"], &[]);
    assert_eq!((code, log.as_str()), (0, ""), "no handler configured");
}

#[test]
fn the_ip_address_must_be_local() {
    let d = Dir::new();
    std::fs::write(d.path("t.conf"), CONF.replace("127.0.0.1", "192.0.2.77")).unwrap();
    let (code, log) = d.run(&["up", "r0"], &[]);
    assert_eq!((code, log.as_str()), (10, ""));
    let (code, _) = d.run(&["-d", "up", "r0"], &[]);
    assert_eq!(code, 0, "not checked in dry-run mode");
}

#[test]
fn version_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_drbdadm"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "DRBDADM_BUILDTAG",
            "DRBDADM_API_VERSION",
            "DRBD_KERNEL_VERSION_CODE",
            "DRBDADM_VERSION_CODE",
            "DRBDADM_VERSION"
        ]
    );
    assert!(text.contains("DRBDADM_API_VERSION=1\n"));
    assert!(text.contains("DRBDADM_VERSION=8.4.11\n"));
    if !Path::new("/proc/drbd").exists() {
        assert!(text.contains("DRBD_KERNEL_VERSION_CODE=0x08040b\n"));
    }
}
