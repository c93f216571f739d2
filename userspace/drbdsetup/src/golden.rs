//! Golden tests against drbd-utils' drbdsetup-84, with the data recorded by
//! `golden/capture.sh` (see there and `golden/capture84.c`):
//!
//! - `golden/requests84.txt`: the requests drbdsetup-84 sent for each
//!   command line of `golden/commands84.txt`, to a kernel that refused them
//!   all; ours must send the same bytes (genlmsghdr, DRBD header,
//!   attributes) to a kernel that refuses them the same way.
//! - `golden/render/<name>.replies` (kernel answers, written by the
//!   `write_render_scripts` test below with the same `ReplyBuilder` the
//!   kernel module uses) and `<name>.out` (what drbdsetup-84 printed on
//!   stdout and stderr, its exit status and requests): ours must print the
//!   same, exit the same way and send the same requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::Parser;
use drbd_include::genl::{
    cmd, notification_header as nh, resource_statistics, state_info, timeout_parms, CfgContext,
    ConnState, ConnectionInfo, ConnectionStatistics, DeviceInfo, DeviceStatistics, DiskConf,
    DiskState, HelperInfo, NetConf, PeerDeviceInfo, PeerDeviceStatistics, ReplyBuilder,
    ResourceInfo, ResourceOpts, ResourceStatistics, Role, State, StateInfo, MINOR_ALL,
};

use crate::testutil::{is_exhausted, message, RefusingKernel, ScriptLine, ScriptedKernel};
use crate::{execute, plan, Cli, Failure, Output};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn hex_words(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(|w| w.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One recorded request: whether it was a dump, and genlmsghdr + body.
type Recorded = (bool, Vec<u8>);

/// Parses "req <flags> <hex>" lines.
fn recorded(line: &str) -> Option<Recorded> {
    let rest = line.strip_prefix("req ")?;
    let (flags, hex) = rest.split_once(' ').unwrap_or((rest, ""));
    let flags = u16::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    Some((flags & 0x300 == 0x300, unhex(hex)))
}

/// Our requests in the same form.
fn ours(sent: &[(u8, bool, Vec<u8>)]) -> Vec<Recorded> {
    sent.iter()
        .map(|(c, dump, body)| (*dump, [&[*c, 1, 0, 0][..], body].concat()))
        .collect()
}

fn show(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|(dump, bytes)| format!("  dump={dump} {}\n", hex_words(bytes)))
        .collect()
}

fn parse_line(line: &str) -> crate::Command {
    let argv = std::iter::once("drbdsetup").chain(line.split_whitespace());
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .command
}

/// Collects what a command prints.
#[derive(Default)]
struct Captured {
    out: String,
    err: String,
}

impl Output for Captured {
    fn emit(&mut self, out: &str, err: &str) {
        self.out.push_str(out);
        self.err.push_str(err);
    }
}

fn fixed_clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456)
}

/// Runs a command line against `transport`: (stdout, stderr, exit status),
/// 99 when the transport ran out of answers.
fn run_line(line: &str, transport: &mut impl crate::Transport) -> (String, String, u8) {
    let plan = plan(&parse_line(line)).unwrap();
    let mut captured = Captured::default();
    let status = match execute(&plan, transport, &mut captured, fixed_clock) {
        Ok(code) => code,
        Err(Failure::Transport { source, .. }) if is_exhausted(&source) => 99,
        Err(failure) => {
            let _ = writeln!(captured.err, "{failure}");
            failure.exit_code()
        }
    };
    (captured.out, captured.err, status)
}

/// Where our requests knowingly differ from drbdsetup-84's.
fn expected_requests(line: &str, theirs: &[Recorded]) -> Vec<Recorded> {
    if line.starts_with("down ") {
        // drbdsetup-84 first dumps the resource's status to clean up its
        // registry of minors; we send only DOWN.
        return theirs.last().cloned().into_iter().collect();
    }
    theirs.to_vec()
}

#[test]
fn requests_match_drbdsetup_84() {
    let text = std::fs::read_to_string(golden_dir().join("requests84.txt")).unwrap();
    let mut entries: Vec<(String, Vec<Recorded>)> = Vec::new();
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("== ") {
            entries.push((command.to_owned(), Vec::new()));
        } else if let (Some(req), Some(entry)) = (recorded(line), entries.last_mut()) {
            entry.1.push(req);
        }
    }
    assert!(entries.len() > 60, "{} entries", entries.len());
    let mut failures = String::new();
    for (line, theirs) in &entries {
        assert!(!theirs.is_empty(), "{line}: nothing recorded");
        let mut kernel = RefusingKernel::default();
        let _ = run_line(line, &mut kernel);
        let ours = ours(&kernel.sent);
        let expected = expected_requests(line, theirs);
        if ours != expected {
            let _ = write!(
                failures,
                "{line}\n ours:\n{} drbdsetup-84:\n{}",
                show(&ours),
                show(&expected)
            );
        }
    }
    assert!(failures.is_empty(), "requests differ:\n{failures}");
}

/// A parsed `.out` file.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    status: u8,
    requests: Vec<Recorded>,
}

fn parse_out(text: &str) -> Outcome {
    let (stdout, rest) = text.split_once("-- stderr --\n").unwrap();
    let (stderr, rest) = rest.rsplit_once("-- exit ").unwrap();
    let (status, rest) = rest.split_once(" --\n").unwrap();
    let requests = rest.lines().filter_map(recorded).collect();
    Outcome {
        stdout: stdout.to_owned(),
        stderr: stderr.replace("drbdsetup-84", "drbdsetup"),
        status: status.parse().unwrap(),
        requests,
    }
}

fn parse_script(text: &str) -> (String, Vec<ScriptLine>) {
    let mut lines = text.lines();
    let args = lines
        .next()
        .and_then(|l| l.strip_prefix("# drbdsetup-84 "))
        .unwrap()
        .to_owned();
    let script = lines
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            if l == "done" {
                return ScriptLine::Done;
            }
            let (seq, hex) = l.split_once(' ').unwrap();
            let bytes = unhex(hex);
            let (cmd, body) = (bytes[0], bytes[4..].to_vec());
            match seq {
                "req" => ScriptLine::Reply(cmd, body),
                n => ScriptLine::Event(n.parse().unwrap(), cmd, body),
            }
        })
        .collect();
    (args, script)
}

#[test]
fn output_matches_drbdsetup_84() {
    let dir = golden_dir().join("render");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "replies"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "{} render scripts", names.len());
    let mut failures = String::new();
    for path in &names {
        let (args, script) = parse_script(&std::fs::read_to_string(path).unwrap());
        let expected = parse_out(&std::fs::read_to_string(path.with_extension("out")).unwrap());
        let mut kernel = ScriptedKernel::new(script);
        let (stdout, stderr, status) = run_line(&args, &mut kernel);
        let actual = Outcome {
            stdout,
            stderr,
            status,
            requests: ours(&kernel.sent),
        };
        if actual != expected {
            let _ = write!(
                failures,
                "== {} ({args})\n-- ours --\n{}-- stderr --\n{}-- exit {} --\n{}\
                 -- drbdsetup-84 --\n{}-- stderr --\n{}-- exit {} --\n{}",
                path.file_stem().unwrap().to_string_lossy(),
                actual.stdout,
                actual.stderr,
                actual.status,
                show(&actual.requests),
                expected.stdout,
                expected.stderr,
                expected.status,
                show(&expected.requests),
            );
        }
    }
    assert!(failures.is_empty(), "output differs:\n{failures}");
}

// ---------------------------------------------------------------------------
// The render scripts.

fn word(role: Role, peer: Role, conn: ConnState, disk: DiskState, pdsk: DiskState) -> u32 {
    State {
        role,
        peer,
        conn,
        disk,
        pdsk,
        susp: false,
        aftr_isp: false,
        peer_isp: false,
        user_isp: false,
        susp_nod: false,
        susp_fen: false,
    }
    .to_u32()
}

fn standalone_diskless() -> u32 {
    word(
        Role::Secondary,
        Role::Unknown,
        ConnState::StandAlone,
        DiskState::Diskless,
        DiskState::DUnknown,
    )
}

fn connected_primary() -> u32 {
    word(
        Role::Primary,
        Role::Secondary,
        ConnState::Connected,
        DiskState::UpToDate,
        DiskState::UpToDate,
    )
}

const ME: [u8; 16] = [2, 0, 0x1e, 0x6d, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
const PEER: [u8; 16] = [2, 0, 0x1e, 0x6d, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];

fn ctx(name: &'static str, volume: Option<u32>, addrs: bool) -> CfgContext<'static> {
    CfgContext {
        volume,
        resource_name: Some(name.as_bytes()),
        my_addr: addrs.then_some(&ME[..]),
        peer_addr: addrs.then_some(&PEER[..]),
    }
}

fn disk(backing: &'static str, meta: &'static str, idx: i32) -> DiskConf<'static> {
    DiskConf {
        backing_dev: backing.as_bytes(),
        meta_dev: meta.as_bytes(),
        meta_dev_idx: idx,
        ..DiskConf::default()
    }
}

fn state(sib: u32, current: u32) -> StateInfo<'static> {
    StateInfo {
        sib_reason: sib,
        current_state: current,
        capacity: 2048,
        ..StateInfo::default()
    }
}

/// A GET_STATUS reply about a device, as the kernel builds it.
fn status(
    minor: u32,
    c: CfgContext<'static>,
    d: Option<DiskConf<'static>>,
    n: Option<NetConf<'static>>,
    s: StateInfo<'static>,
) -> Vec<u8> {
    message(minor, 101, |r| {
        r.put_cfg_context(&c).unwrap();
        r.put_resource_opts(&ResourceOpts::default()).unwrap();
        if let Some(d) = d {
            r.put_disk_conf(&d).unwrap();
        }
        if let Some(n) = n {
            r.put_net_conf(&n, false).unwrap();
        }
        r.put_state_info(&s).unwrap();
    })
}

/// Script line for a message.
fn line(seq: Option<u32>, genl_cmd: u8, body: &[u8]) -> String {
    let bytes = [&[genl_cmd, 1, 0, 0][..], body].concat();
    match seq {
        None => format!("req {}", hex_words(&bytes)),
        Some(n) => format!("{n} {}", hex_words(&bytes)),
    }
}

fn req(genl_cmd: u8, body: &[u8]) -> String {
    line(None, genl_cmd, body)
}

fn ev(seq: u32, genl_cmd: u8, body: &[u8]) -> String {
    line(Some(seq), genl_cmd, body)
}

fn uuid_state(current: u32) -> StateInfo<'static> {
    StateInfo {
        uuids: Some([0x7E6B_A3B1_5CC2_0E44, 0, 0x1A2B_3C4D_5E6F_7081, 0x4]),
        disk_flags: Some(0x91),
        bits_total: Some(64),
        bits_oos: Some(0),
        ed_uuid: 0x7E6B_A3B1_5CC2_0E44,
        ..state(1, current)
    }
}

fn net() -> NetConf<'static> {
    NetConf {
        shared_secret: b"secret",
        cram_hmac_alg: b"sha1",
        verify_alg: b"md5",
        max_buffers: 8000,
        after_sb_0p: 3,
        two_primaries: true,
        tcp_cork: false,
        cong_fill: 2048,
        ..NetConf::default()
    }
}

fn timeout_reply(minor: u32, timeout_type: u32) -> Vec<u8> {
    message(minor, 101, |r| r.put_timeout_type(timeout_type).unwrap())
}

fn scripts() -> BTreeMap<&'static str, (&'static str, Vec<String>)> {
    let gs = cmd::GET_STATUS;
    let r0v0 = ctx("r0", Some(0), false);
    let sync = word(
        Role::Primary,
        Role::Secondary,
        ConnState::SyncSource,
        DiskState::UpToDate,
        DiskState::Inconsistent,
    );
    let wfc = word(
        Role::Secondary,
        Role::Unknown,
        ConnState::WfConnection,
        DiskState::UpToDate,
        DiskState::DUnknown,
    );
    let standalone_uptodate = word(
        Role::Secondary,
        Role::Unknown,
        ConnState::StandAlone,
        DiskState::UpToDate,
        DiskState::DUnknown,
    );
    let diskless_connected = word(
        Role::Secondary,
        Role::Primary,
        ConnState::Connected,
        DiskState::Diskless,
        DiskState::UpToDate,
    );
    let paused = State {
        susp: true,
        aftr_isp: true,
        user_isp: true,
        ..State::from_u32(sync).unwrap()
    }
    .to_u32();
    let syncing = StateInfo {
        bits_total: Some(1 << 20),
        bits_oos: Some(300_000),
        bits_rs_total: Some(1 << 20),
        bits_rs_failed: Some(1000),
        ..state(1, sync)
    };
    let attached = Some(disk("/dev/vdb", "/dev/vdb", -3));
    let empty = |minor: u32, code: i32| message(minor, code, |_| {});

    let mut s = BTreeMap::new();
    let mut add = |name: &'static str, args: &'static str, lines: Vec<String>| {
        s.insert(name, (args, lines));
    };

    add(
        "role-primary",
        "role 5",
        vec![req(
            gs,
            &status(5, r0v0, attached, None, state(1, connected_primary())),
        )],
    );
    add(
        "role-unconfigured",
        "role 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, standalone_diskless())),
        )],
    );
    add(
        "role-no-state-info",
        "role 5",
        vec![req(
            gs,
            &message(5, 101, |r| r.put_cfg_context(&r0v0).unwrap()),
        )],
    );
    add(
        "role-minor-invalid",
        "role 5",
        vec![req(gs, &empty(5, 127))],
    );
    add(
        "role-too-large",
        "role 5",
        vec![req(gs, &status(5, r0v0, None, None, state(1, 0x7f_ffff)))],
    );
    add(
        "state-deprecated",
        "state 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, diskless_connected)),
        )],
    );
    add(
        "cstate-sync",
        "cstate 5",
        vec![req(gs, &status(5, r0v0, attached, None, state(1, sync)))],
    );
    add(
        "cstate-unconfigured",
        "cstate 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, standalone_diskless())),
        )],
    );
    add(
        "dstate-sync",
        "dstate 5",
        vec![req(gs, &status(5, r0v0, attached, None, state(1, sync)))],
    );
    add(
        "dstate-standalone",
        "dstate 5",
        vec![req(
            gs,
            &status(5, r0v0, attached, None, state(1, standalone_uptodate)),
        )],
    );
    add(
        "dstate-unconfigured",
        "dstate 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, standalone_diskless())),
        )],
    );
    add(
        "get-gi",
        "get-gi 5",
        vec![req(
            gs,
            &status(5, r0v0, attached, None, uuid_state(connected_primary())),
        )],
    );
    add(
        "show-gi",
        "show-gi 5",
        vec![req(gs, &status(5, r0v0, attached, None, uuid_state(sync)))],
    );
    add(
        "show-gi-flags",
        "show-gi 5",
        vec![req(
            gs,
            &status(
                5,
                r0v0,
                attached,
                None,
                StateInfo {
                    disk_flags: Some(0x6e),
                    ..uuid_state(standalone_uptodate)
                },
            ),
        )],
    );
    add(
        "get-gi-diskless",
        "get-gi 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, diskless_connected)),
        )],
    );
    add(
        "get-gi-unconfigured",
        "get-gi 5",
        vec![req(
            gs,
            &status(5, r0v0, None, None, state(1, standalone_diskless())),
        )],
    );
    add(
        "get-gi-no-uuids",
        "get-gi 5",
        vec![req(
            gs,
            &status(5, r0v0, attached, None, state(1, standalone_uptodate)),
        )],
    );
    add(
        "sh-status-minor",
        "sh-status 5",
        vec![req(
            gs,
            &status(
                5,
                ctx("r 0", Some(0), true),
                attached,
                Some(net()),
                state(1, connected_primary()),
            ),
        )],
    );
    add(
        "sh-status-paused",
        "sh-status 5",
        vec![req(
            gs,
            &status(
                5,
                r0v0,
                attached,
                None,
                StateInfo {
                    current_state: paused,
                    ..syncing
                },
            ),
        )],
    );
    add(
        "sh-status-missing",
        "sh-status 7",
        vec![req(gs, &empty(7, 127))],
    );
    add(
        "sh-status-all",
        "sh-status all",
        vec![
            req(gs, &status(0, r0v0, attached, None, syncing)),
            req(
                gs,
                &status(
                    1,
                    ctx("r0", Some(1), false),
                    None,
                    None,
                    state(1, standalone_diskless()),
                ),
            ),
            req(
                gs,
                &message(MINOR_ALL, 101, |r| {
                    r.put_cfg_context(&ctx("r1", None, false)).unwrap()
                }),
            ),
            "done".into(),
        ],
    );
    add(
        "show-minor",
        "show 5",
        vec![req(
            gs,
            &status(
                5,
                ctx("r0", Some(0), true),
                attached,
                Some(net()),
                state(1, connected_primary()),
            ),
        )],
    );
    add(
        "show-defaults",
        "show --show-defaults 5",
        vec![req(
            gs,
            &status(
                5,
                ctx("r0", Some(0), true),
                attached,
                Some(net()),
                state(1, connected_primary()),
            ),
        )],
    );
    let odd_disk = DiskConf {
        resync_rate: 102_400,
        c_plan_ahead: 0,
        disk_flushes: false,
        resync_after: 3,
        on_io_error: 0,
        read_balancing: 10,
        disk_size: 1 << 21,
        ..disk("/dev/sdb", "/dev/sdc", 2)
    };
    add(
        "show-all",
        "show all",
        vec![
            req(
                gs,
                &status(
                    0,
                    ctx("r0", Some(0), true),
                    Some(odd_disk),
                    Some(net()),
                    state(1, connected_primary()),
                ),
            ),
            req(
                gs,
                &status(
                    1,
                    ctx("r0", Some(1), true),
                    Some(disk("/dev/sdd", "/dev/sde\"x", -2)),
                    Some(net()),
                    state(1, connected_primary()),
                ),
            ),
            req(
                gs,
                &status(
                    2,
                    ctx("r0", Some(2), true),
                    None,
                    Some(net()),
                    state(1, diskless_connected),
                ),
            ),
            req(
                gs,
                &message(MINOR_ALL, 101, |r| {
                    r.put_cfg_context(&ctx("r1", None, false)).unwrap();
                    r.put_resource_opts(&ResourceOpts {
                        cpu_mask: b"3",
                        on_no_data: 1,
                    })
                    .unwrap();
                }),
            ),
            req(
                gs,
                &status(
                    9,
                    ctx("r2", Some(0), false),
                    Some(disk("/dev/sdf", "/dev/sdf", -1)),
                    None,
                    state(1, standalone_uptodate),
                ),
            ),
            "done".into(),
        ],
    );
    add("show-empty", "show", vec!["done".into()]);
    add(
        "show-unknown-resource",
        "show r9",
        vec![
            req(
                gs,
                &message(MINOR_ALL, 158, |r| {
                    r.put_cfg_context(&ctx("r9", None, false)).unwrap()
                }),
            ),
            "done".into(),
        ],
    );

    // events: the initial dump, then notifications.
    let st =
        |minor: u32, c: CfgContext<'static>, s: StateInfo<'static>| status(minor, c, None, None, s);
    let change = StateInfo {
        prev_state: Some(wfc),
        new_state: Some(connected_primary()),
        ..state(state_info::SIB_STATE_CHANGE, connected_primary())
    };
    let helper_pre = StateInfo {
        helper: Some(b"before-resync-target"),
        ..state(state_info::SIB_HELPER_PRE, sync)
    };
    let helper_post = StateInfo {
        helper: Some(b"before-resync-target"),
        helper_exit_code: Some(0x100),
        ..state(state_info::SIB_HELPER_POST, sync)
    };
    let progress = StateInfo {
        sib_reason: state_info::SIB_SYNC_PROGRESS,
        ..syncing
    };
    let events_lines = |first: u32| {
        vec![
            ev(first, gs, &st(0, r0v0, state(1, wfc))),
            ev(
                first,
                gs,
                &st(6, ctx("r0", Some(1), false), state(1, paused)),
            ),
            ev(
                first,
                gs,
                &message(MINOR_ALL, 101, |r| {
                    r.put_cfg_context(&ctx("r1", None, false)).unwrap()
                }),
            ),
            "done".into(),
            ev(7, cmd::EVENT, &st(0, r0v0, change)),
            ev(8, cmd::EVENT, &st(6, ctx("r0", Some(1), false), helper_pre)),
            ev(9, cmd::EVENT, &st(0, r0v0, helper_post)),
            ev(10, cmd::EVENT, &st(0, r0v0, progress)),
            ev(11, cmd::EVENT, &st(0, r0v0, state(9, sync))),
            ev(
                12,
                cmd::EVENT,
                &message(0, 101, |r| r.put_info_text(b"two\nlines").unwrap()),
            ),
            ev(
                13,
                cmd::EVENT,
                &st(3, ctx("r2", Some(0), false), state(2, sync)),
            ),
            ev(14, cmd::EVENT, &empty(0, 127)),
        ]
    };
    add("events-all", "events all", events_lines(1000));
    add("events-minor", "events 0", {
        // A doit: one reply (drbdsetup-84 prints its sequence number, so
        // the script gives one), no NLMSG_DONE.
        let mut l = events_lines(1000);
        l.drain(1..4);
        l
    });
    add("events-resource", "events r0", events_lines(1000));
    add(
        "events-error",
        "events all",
        vec![
            ev(5, gs, &st(0, r0v0, state(1, wfc))),
            ev(6, cmd::EVENT, &empty(0, 158)),
        ],
    );

    // events2.
    let nh_msg = |minor: u32, action: u32, build: &dyn Fn(&mut ReplyBuilder<'_>)| {
        message(minor, 101, |r| {
            build(r);
            r.put_notification_header(action).unwrap();
        })
    };
    let res_info = |role: Role, susp: bool| ResourceInfo {
        role: role as u32,
        susp,
        susp_nod: false,
        susp_fen: susp,
    };
    let dev_stats = DeviceStatistics {
        size: 2048,
        read: 100,
        write: 10,
        al_writes: 3,
        bm_writes: 1,
        upper_pending: 0,
        lower_pending: 1,
        history_uuids: Some([1, 2]),
        ..DeviceStatistics::default()
    };
    let peer_stats = PeerDeviceStatistics {
        received: 10,
        sent: 20,
        pending: 1,
        unacked: 2,
        out_of_sync: 2048,
        ..PeerDeviceStatistics::default()
    };
    let pd_info = |repl: ConnState, disk: DiskState, user: u32| PeerDeviceInfo {
        repl_state: repl as u32,
        disk_state: disk as u32,
        resync_susp_user: user,
        ..PeerDeviceInfo::default()
    };
    let events2 = |with_stats: bool| {
        let rs = ResourceStatistics {
            write_ordering: resource_statistics::WO_BDEV_FLUSH,
        };
        vec![
            ev(
                100,
                cmd::RESOURCE_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_EXISTS, &|r| {
                    r.put_cfg_context(&ctx("r0", None, false)).unwrap();
                    r.put_resource_info(&res_info(Role::Secondary, false))
                        .unwrap();
                    if with_stats {
                        r.put_resource_statistics(&rs).unwrap();
                    }
                }),
            ),
            ev(
                100,
                cmd::DEVICE_STATE,
                &nh_msg(0, nh::NOTIFY_EXISTS, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), false)).unwrap();
                    r.put_device_info(&DeviceInfo {
                        disk_state: DiskState::UpToDate as u32,
                    })
                    .unwrap();
                    r.put_device_statistics(&dev_stats).unwrap();
                }),
            ),
            ev(
                100,
                cmd::CONNECTION_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_EXISTS, &|r| {
                    r.put_cfg_context(&ctx("r0", None, true)).unwrap();
                    r.put_connection_info(&ConnectionInfo {
                        connection_state: ConnState::WfConnection as u32,
                        role: Role::Unknown as u32,
                    })
                    .unwrap();
                    r.put_connection_statistics(&ConnectionStatistics { congested: false })
                        .unwrap();
                }),
            ),
            ev(
                100,
                cmd::PEER_DEVICE_STATE,
                &nh_msg(0, nh::NOTIFY_EXISTS, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), true)).unwrap();
                    r.put_peer_device_info(&pd_info(
                        ConnState::WfReportParams,
                        DiskState::DUnknown,
                        0,
                    ))
                    .unwrap();
                    r.put_peer_device_statistics(&peer_stats).unwrap();
                }),
            ),
            ev(
                100,
                cmd::RESOURCE_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_EXISTS, &|r| {
                    r.put_cfg_context(&ctx("r1", None, false)).unwrap();
                    r.put_resource_info(&res_info(Role::Unknown, false))
                        .unwrap();
                }),
            ),
            ev(
                100,
                cmd::INITIAL_STATE_DONE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_EXISTS, &|_| {}),
            ),
            "done".into(),
            ev(
                20,
                cmd::CONNECTION_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_CHANGE | nh::NOTIFY_CONTINUES, &|r| {
                    r.put_cfg_context(&ctx("r0", None, true)).unwrap();
                    r.put_connection_info(&ConnectionInfo {
                        connection_state: ConnState::Connected as u32,
                        role: Role::Secondary as u32,
                    })
                    .unwrap();
                    r.put_connection_statistics(&ConnectionStatistics { congested: true })
                        .unwrap();
                }),
            ),
            ev(
                21,
                cmd::PEER_DEVICE_STATE,
                &nh_msg(0, nh::NOTIFY_CHANGE, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), true)).unwrap();
                    r.put_peer_device_info(&pd_info(
                        ConnState::SyncSource,
                        DiskState::Inconsistent,
                        1,
                    ))
                    .unwrap();
                    r.put_peer_device_statistics(&peer_stats).unwrap();
                }),
            ),
            ev(
                23,
                cmd::RESOURCE_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_CHANGE, &|r| {
                    r.put_cfg_context(&ctx("r0", None, false)).unwrap();
                    r.put_resource_info(&res_info(Role::Primary, true)).unwrap();
                    r.put_resource_statistics(&ResourceStatistics { write_ordering: 1 })
                        .unwrap();
                }),
            ),
            ev(
                24,
                cmd::DEVICE_STATE,
                &nh_msg(0, nh::NOTIFY_CHANGE, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), false)).unwrap();
                    r.put_device_info(&DeviceInfo {
                        disk_state: DiskState::UpToDate as u32,
                    })
                    .unwrap();
                    r.put_device_statistics(&DeviceStatistics {
                        upper_blocked: true,
                        al_suspended: true,
                        ..dev_stats
                    })
                    .unwrap();
                }),
            ),
            ev(
                25,
                cmd::HELPER,
                &nh_msg(0, nh::NOTIFY_CALL, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), true)).unwrap();
                    r.put_helper_info(&HelperInfo {
                        name: b"before-resync-source",
                        status: 0,
                    })
                    .unwrap();
                }),
            ),
            ev(
                26,
                cmd::HELPER,
                &nh_msg(0, nh::NOTIFY_RESPONSE, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), true)).unwrap();
                    r.put_helper_info(&HelperInfo {
                        name: b"before-resync-source",
                        status: 3,
                    })
                    .unwrap();
                }),
            ),
            ev(
                27,
                cmd::RESOURCE_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_CREATE, &|r| {
                    r.put_cfg_context(&ctx("r2", None, false)).unwrap();
                    r.put_resource_info(&res_info(Role::Secondary, false))
                        .unwrap();
                }),
            ),
            ev(
                28,
                cmd::CONNECTION_STATE,
                &nh_msg(MINOR_ALL, nh::NOTIFY_DESTROY, &|r| {
                    r.put_cfg_context(&ctx("r0", None, true)).unwrap();
                }),
            ),
            ev(
                29,
                cmd::DEVICE_STATE,
                &nh_msg(0, 9, &|r| {
                    r.put_cfg_context(&ctx("r0", Some(0), false)).unwrap();
                }),
            ),
        ]
    };
    add("events2-all", "events2 all", events2(false));
    add(
        "events2-statistics",
        "events2 --statistics r0",
        events2(true),
    );
    add("events2-now", "events2 --now", events2(false));

    // wait-connect / wait-sync.
    let tr = |t: u32| req(cmd::GET_TIMEOUT_TYPE, &timeout_reply(5, t));
    let st5 = |s: u32, sib: u32| status(5, r0v0, None, None, state(sib, s));
    add(
        "wait-connect",
        "wait-connect 5",
        vec![
            tr(timeout_parms::UT_DEFAULT),
            req(gs, &st5(wfc, 1)),
            ev(
                40,
                cmd::EVENT,
                &status(
                    6,
                    ctx("r1", Some(0), false),
                    None,
                    None,
                    state(2, connected_primary()),
                ),
            ),
            ev(41, cmd::EVENT, &st5(sync, 3)),
            ev(
                42,
                cmd::EVENT,
                &st5(
                    word(
                        Role::Secondary,
                        Role::Unknown,
                        ConnState::WfReportParams,
                        DiskState::UpToDate,
                        DiskState::DUnknown,
                    ),
                    2,
                ),
            ),
            ev(43, cmd::EVENT, &st5(sync, 2)),
            ev(44, cmd::EVENT, &st5(wfc, 2)),
        ],
    );
    add(
        "wait-connect-standalone",
        "wait-connect 5",
        vec![tr(0), req(gs, &st5(standalone_uptodate, 1))],
    );
    add(
        "wait-connect-after-sb",
        "wait-connect --wait-after-sb 5",
        vec![
            tr(0),
            req(gs, &st5(standalone_uptodate, 1)),
            ev(50, cmd::EVENT, &st5(standalone_uptodate, 2)),
        ],
    );
    add(
        "wait-connect-timeouts",
        "wait-connect --wfc-timeout=10 --degr-wfc-timeout=20 --outdated-wfc-timeout=30 5",
        vec![
            tr(timeout_parms::UT_DEGRADED),
            req(gs, &st5(connected_primary(), 1)),
        ],
    );
    add(
        "wait-connect-minor-invalid",
        "wait-connect 5",
        vec![req(cmd::GET_TIMEOUT_TYPE, &empty(5, 127))],
    );
    add(
        "wait-connect-no-timeout-type",
        "wait-connect 5",
        vec![req(cmd::GET_TIMEOUT_TYPE, &empty(5, 101))],
    );
    add(
        "wait-connect-status-error",
        "wait-connect 5",
        vec![tr(0), req(gs, &empty(5, 127))],
    );
    add(
        "wait-sync",
        "wait-sync 5",
        vec![
            tr(timeout_parms::UT_PEER_OUTDATED),
            req(gs, &st5(sync, 1)),
            ev(60, cmd::EVENT, &st5(sync, 5)),
            ev(61, cmd::EVENT, &st5(connected_primary(), 2)),
        ],
    );
    add(
        "wait-sync-standalone",
        "wait-sync 5",
        vec![tr(0), req(gs, &st5(standalone_uptodate, 1))],
    );
    s
}

/// Rewrites `golden/render/*.replies` from `scripts()`; run with
/// `cargo test -p drbdsetup write_render_scripts -- --ignored`, then
/// `golden/capture.sh` to record drbdsetup-84's output for them.
#[test]
#[ignore = "writes the golden scripts"]
fn write_render_scripts() {
    let dir = golden_dir().join("render");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, (args, lines)) in scripts() {
        let text = format!("# drbdsetup-84 {args}\n{}\n", lines.join("\n"));
        std::fs::write(dir.join(format!("{name}.replies")), text).unwrap();
    }
}

#[test]
fn render_scripts_are_current() {
    let dir = golden_dir().join("render");
    for (name, (args, lines)) in scripts() {
        let text = format!("# drbdsetup-84 {args}\n{}\n", lines.join("\n"));
        let stored = std::fs::read_to_string(dir.join(format!("{name}.replies"))).unwrap();
        assert_eq!(
            stored, text,
            "{name}: rerun write_render_scripts and capture.sh"
        );
    }
}
