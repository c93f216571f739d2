//! Configuration errors: one test per kind, each checking that the message
//! names the file and line (`t.conf:12: ...`) and that drbdadm exits 10.

// Test code: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A scratch directory holding the files of one test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(files: &[(&str, &str)]) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "drbdadm-errors-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Scratch(dir)
    }

    /// Runs drbdadm in the directory: (exit code, stderr).
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_drbdadm"))
            .current_dir(&self.0)
            .args(args)
            .env("__DRBD_NODE__", "alpha")
            .env("DRBDSETUP", "drbdsetup")
            .env("DRBDMETA", "drbdmeta")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("__DRBD_NODE__") && !l.contains("PRETENDING") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        (out.status.code().unwrap_or(-1), stderr)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const HOSTS: &str = "\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1:7789;\n\t}\n\ton beta {\n\t\tdevice /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.2:7789;\n\t}\n";

/// A resource r0 whose first lines are `head` (starting on line 2).
fn res(head: &str) -> String {
    format!("resource r0 {{\n{head}{HOSTS}}}\n")
}

/// Expects `drbdadm -c t.conf -d up r0` to fail with exit code 10 and the
/// first stderr line to be `expected`.
fn expect_error(conf: &str, expected: &str) {
    let s = Scratch::new(&[("t.conf", conf)]);
    let (code, stderr) = s.run(&["-c", "t.conf", "-d", "up", "r0"]);
    let first = stderr.lines().next().unwrap_or("");
    assert_eq!(first, expected, "whole stderr:\n{stderr}");
    assert_eq!(code, 10, "stderr:\n{stderr}");
}

#[test]
fn unknown_top_level_keyword() {
    expect_error(
        "global { usage-count no; }\n\nresourc r0 {\n}\n",
        "t.conf:3: unknown keyword 'resourc', expected global | common | resource | skip | include",
    );
}

#[test]
fn unknown_option_in_a_known_section() {
    expect_error(
        &res("\tnet {\n\t\tfoo 1;\n\t}\n"),
        "t.conf:3: unknown keyword 'foo' in net section",
    );
}

#[test]
fn option_of_another_section() {
    expect_error(
        &res("\tnet {\n\t\tresync-rate 10M;\n\t}\n"),
        "t.conf:3: unknown keyword 'resync-rate' in net section",
    );
}

#[test]
fn unknown_keyword_in_a_resource() {
    expect_error(
        &res("\tfrobnicate yes;\n"),
        "t.conf:2: unknown keyword 'frobnicate', expected protocol | on | disk | net | syncer | startup | handlers | options | device | meta-disk | volume",
    );
}

#[test]
fn unknown_keyword_in_a_host_section() {
    let conf = "resource r0 {\n\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tdisks /dev/vdb;\n\t}\n}\n";
    expect_error(
        conf,
        "t.conf:4: unknown keyword 'disks', expected disk | device | address | meta-disk | flexible-meta-disk | volume | options",
    );
}

#[test]
fn missing_semicolon() {
    expect_error(
        &res("\tnet {\n\t\tprotocol C\n\t}\n"),
        "t.conf:4: expected ';', got '}'",
    );
}

#[test]
fn unterminated_string() {
    expect_error(
        &res("\tnet {\n\t\tshared-secret \"abc;\n\t}\n"),
        "t.conf:3: unterminated double quoted string",
    );
}

#[test]
fn unexpected_character() {
    expect_error(
        &res("\tnet {\n\t\tshared-secret a@b;\n\t}\n"),
        "t.conf:3: unexpected character '@', expected ';'",
    );
}

#[test]
fn unexpected_end_of_file() {
    expect_error("resource r0 {\n\ton alpha {\n", "t.conf:3: unexpected end of file, expected disk | device | address | meta-disk | flexible-meta-disk | volume | options");
}

#[test]
fn bad_ipv4_address() {
    let conf = res("").replace("address 10.0.0.2:7789", "address beta.example:7789");
    expect_error(
        &conf,
        "t.conf:12: unknown keyword 'beta.example', expected ssocks | sdp | ipv4 | ipv6 | <ipv4 address>",
    );
}

#[test]
fn bad_ipv6_address() {
    let conf = res("").replace("address 10.0.0.2:7789", "address ipv6 [fd00::1::2]:7789");
    expect_error(&conf, "t.conf:12: invalid IPv6 address 'fd00::1::2'");
}

#[test]
fn port_out_of_range() {
    let conf = res("").replace("10.0.0.2:7789", "10.0.0.2:77890");
    expect_error(
        &conf,
        "t.conf:12: port 77890 => 77890 out of range [1..65535].",
    );
}

#[test]
fn number_out_of_range() {
    expect_error(
        &res("\tnet {\n\t\tmax-buffers 1;\n\t}\n"),
        "t.conf:3: max-buffers 1 => 1 out of range [32..131072].",
    );
    expect_error(
        &res("\tdisk {\n\t\tresync-rate 5G;\n\t}\n"),
        "t.conf:3: resync-rate 5G => 5242880k out of range [1..4194304]k.",
    );
}

#[test]
fn not_a_number() {
    expect_error(
        &res("\tnet {\n\t\tko-count many;\n\t}\n"),
        "t.conf:3: ko-count many: not a valid number",
    );
}

#[test]
fn unknown_protocol() {
    expect_error(
        &res("\tprotocol D;\n"),
        "t.conf:2: unknown protocol 'D', should be one of A,B,C",
    );
}

#[test]
fn missing_statement_in_host_section() {
    let conf = "resource r0 {\n\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1:7789;\n\t}\n}\n";
    expect_error(
        conf,
        "t.conf:2: in resource r0, on alpha { ... }: 'disk' keyword missing.",
    );
    let conf = "resource r0 {\n\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t}\n}\n";
    expect_error(
        conf,
        "t.conf:2: in resource r0, on alpha { ... }: 'address' keyword missing.",
    );
}

#[test]
fn mixed_implicit_and_explicit_volumes() {
    let conf = "resource r0 {\n\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tvolume 1 {\n\t\t}\n\t\tdisk /dev/vdb;\n\t}\n}\n";
    expect_error(
        conf,
        "t.conf:6: mixing explicit and implicit volumes is not allowed",
    );
}

#[test]
fn volume_missing_on_a_host() {
    let vol = |n: u32| {
        format!("\t\tvolume {n} {{\n\t\t\tdevice minor {n};\n\t\t\tdisk /dev/vd{n};\n\t\t\tmeta-disk internal;\n\t\t}}\n")
    };
    let conf = format!(
        "resource r0 {{\n\ton alpha {{\n{}{}\t\taddress 10.0.0.1:7789;\n\t}}\n\ton beta {{\n{}\t\taddress 10.0.0.2:7789;\n\t}}\n}}\n",
        vol(0),
        vol(1),
        vol(0)
    );
    expect_error(
        &conf,
        "t.conf:23: in resource r0, on alpha { ... }: volume 1 not defined on beta",
    );
}

#[test]
fn resource_defined_twice() {
    let conf = format!("{}{}", res(""), res(""));
    expect_error(
        &conf,
        "t.conf:15: conflicting use of resource section 'r0' ...",
    );
}

#[test]
fn minor_used_twice_on_a_host() {
    let other = res("").replace("r0", "r1").replace(":7789", ":7790");
    expect_error(
        &format!("{}{other}", res("")),
        "t.conf:17: conflicting use of device-minor 'device-minor:alpha:0' ...",
    );
}

#[test]
fn address_used_twice() {
    let other = res("").replace("r0", "r1").replace("drbd0", "drbd1");
    expect_error(
        &format!("{}{other}", res("")),
        "t.conf:20: conflicting use of IP '10.0.0.1:7789' ...",
    );
}

#[test]
fn bad_device_names() {
    let conf = res("").replace(
        "device /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1",
        "device /dev/sda;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1",
    );
    expect_error(&conf, "t.conf:3: device name must start with /dev/drbd");
    let conf = res("").replace("device /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1", "device /dev/drbd0 minor 1;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1");
    expect_error(
        &conf,
        "t.conf:3: explicit minor number must match with device name",
    );
    let conf = res("").replace(
        "device /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1",
        "device /dev/drbdx;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 10.0.0.1",
    );
    expect_error(
        &conf,
        "t.conf:3: no minor given nor device name contains a minor number",
    );
}

#[test]
fn missing_include_file() {
    expect_error(
        "# main\ninclude \"drbd.d/global_common.conf\";\n",
        "t.conf:2: Failed to open include file 'drbd.d/global_common.conf'.",
    );
}

#[test]
fn error_in_an_included_file_names_that_file() {
    let s = Scratch::new(&[
        ("t.conf", "include \"drbd.d/*.res\";\n"),
        (
            "drbd.d/r0.res",
            &res("\tdisk {\n\t\tbogus-option 1;\n\t}\n"),
        ),
    ]);
    let (code, stderr) = s.run(&["-c", "t.conf", "-d", "up", "r0"]);
    assert_eq!(
        stderr,
        "drbd.d/r0.res:3: unknown keyword 'bogus-option' in disk section"
    );
    assert_eq!(code, 10);
}

#[test]
fn a_glob_without_matches_is_fine() {
    let s = Scratch::new(&[("t.conf", &format!("include \"drbd.d/*.res\";\n{}", res("")))]);
    let (code, stderr) = s.run(&["-c", "t.conf", "-d", "up", "r0"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn unsupported_sections_are_named() {
    expect_error(
        &res("\tfloating 10.0.0.5:7789;\n"),
        "t.conf:2: 'floating' is not supported by this drbdadm",
    );
    expect_error(
        &res("\tstacked-on-top-of r9 {\n\t}\n"),
        "t.conf:2: 'stacked-on-top-of' is not supported by this drbdadm",
    );
}

#[test]
fn sections_given_twice() {
    expect_error(
        &res("\tnet {\n\t}\n\tnet {\n\t}\n"),
        "t.conf:4: in resource r0: the net section is given twice",
    );
    expect_error(
        &format!("global {{\n}}\nglobal {{\n}}\n{}", res("")),
        "t.conf:3: the global section is defined twice",
    );
}

#[test]
fn host_section_in_common() {
    expect_error(
        "common {\n\ton alpha {\n\t}\n}\n",
        "t.conf:2: in the common section, there are no host sections allowed.",
    );
}

#[test]
fn skip_block_until_end_of_file() {
    expect_error(
        "\nskip {\n\tresource r0 {\n",
        "t.conf:2: reached eof while parsing this skip block.",
    );
}

#[test]
fn validation_errors_name_the_resource() {
    let s = Scratch::new(&[(
        "t.conf",
        &res("\tstartup {\n\t\tbecome-primary-on both;\n\t}\n"),
    )]);
    let (code, stderr) = s.run(&["-c", "t.conf", "-d", "up", "r0"]);
    let file = std::fs::canonicalize(s.0.join("t.conf")).unwrap();
    assert_eq!(
        stderr,
        format!(
            "{}:1: in resource r0:\nbecome-primary-on is set to both, but allow-two-primaries is not set.",
            file.display()
        )
    );
    assert_eq!(code, 10);
}

#[test]
fn connect_needs_a_peer() {
    // as drbdadm-84: the missing peer is reported; a dry run shows "N/A"
    let conf = "resource r0 {\n\ton alpha {\n\t\tdevice /dev/drbd0;\n\t\tdisk /dev/vdb;\n\t\tmeta-disk internal;\n\t\taddress 127.0.0.1:7789;\n\t}\n}\n";
    let s = Scratch::new(&[("t.conf", conf)]);
    let (code, stderr) = s.run(&["-c", "t.conf", "-d", "connect", "r0"]);
    assert!(
        stderr.ends_with("t.conf:1: in resource r0:\n\tMissing section 'on <PEER> { ... }'."),
        "{stderr}"
    );
    assert_eq!(code, 0);
    // for real, connect fails
    let (code, stderr) = s.run(&["-c", "t.conf", "connect", "r0"]);
    assert!(
        stderr.ends_with("resource r0: cannot configure network without knowing my peer."),
        "{stderr}"
    );
    assert_eq!(code, 20);
}

#[test]
fn missing_config_file() {
    let s = Scratch::new(&[]);
    let (code, stderr) = s.run(&["-c", "nonexistent.conf", "-d", "up", "r0"]);
    assert_eq!(
        (code, stderr.as_str()),
        (20, "Can not open 'nonexistent.conf'.")
    );
}
