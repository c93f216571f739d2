//! drbd-nl-fuzz: sends random and mutated DRBD 8.4 generic netlink
//! requests to the `drbd` family for a bounded time, and checks that every
//! one is answered (a reply, a netlink error or an ack) within a timeout.
//!
//! Usage: `drbd-nl-fuzz [--seconds N] [--seed S] [--unprivileged]`.
//! With `--unprivileged` (run it as a user without CAP_NET_ADMIN) every
//! command that changes something must be refused with EPERM, as the
//! kernel's GENL_ADMIN_PERM does for DRBD. Exit status 0 when every check
//! held, 1 otherwise, 2 on a usage or setup error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use drbd_include::genl::{self as api, cmd, tla};
use drbd_include::nla::{Attrs, NlaWriter};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// How long the kernel may take to answer one request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// xorshift64*: reproducible from the seed the run prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

struct Options {
    seconds: u64,
    seed: u64,
    unprivileged: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options { seconds: 30, seed: 0, unprivileged: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seconds" => options.seconds = value("--seconds")?,
            "--seed" => options.seed = value("--seed")?,
            "--unprivileged" => options.unprivileged = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.seed == 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        options.seed = (now.as_nanos() as u64) | 1;
    }
    Ok(options)
}

/// One netlink message: nlmsghdr, genlmsghdr, then `body`.
fn message(family: u16, flags: u16, seq: u32, genl_cmd: u8, version: u8, body: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + body.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[genl_cmd, version, 0, 0]);
    msg.extend_from_slice(body);
    msg
}

/// What the kernel answered to one request.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A netlink error or ack (0) with this errno.
    Errno(i32),
    /// A family message (a doit reply or a dump's end).
    Reply,
}

struct Link {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl Link {
    fn open() -> Result<Self, String> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(|e| format!("netlink socket: {e}"))?;
        socket.bind_auto().map_err(|e| format!("netlink bind: {e}"))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| format!("netlink connect: {e}"))?;
        let mut link = Self { socket, family: 0, seq: 0 };
        link.family = link.resolve()?;
        Ok(link)
    }

    fn resolve(&mut self) -> Result<u16, String> {
        let mut buf = [0u8; 64];
        let mut w = NlaWriter::new(&mut buf);
        w.put_str(CTRL_ATTR_FAMILY_NAME, api::FAMILY_NAME.as_bytes()).map_err(|_| "encode")?;
        let body = w.written().to_vec();
        self.seq += 1;
        let msg = message(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, self.seq, CTRL_CMD_GETFAMILY, 1, &body);
        self.socket.send(&msg, 0).map_err(|e| format!("netlink send: {e}"))?;
        for reply in self.receive_all(self.seq)? {
            let Some(attrs) = reply.get(20..) else { continue };
            for attr in Attrs::new(attrs).flatten() {
                if attr.number == CTRL_ATTR_FAMILY_ID {
                    if let Some(id) = attr.payload.get(..2) {
                        return Ok(u16::from_ne_bytes([id[0], id[1]]));
                    }
                }
            }
        }
        Err("the drbd generic netlink family is not registered (module not loaded?)".into())
    }

    /// The messages answering request `seq`, up to its ack, error or
    /// NLMSG_DONE, or the first family message of a doit without ack.
    fn receive_all(&mut self, seq: u32) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no answer to request {seq} within {REPLY_TIMEOUT:?}"));
            }
            set_timeout(&self.socket, left)?;
            let mut buf = Vec::with_capacity(65536);
            match self.socket.recv(&mut buf, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("netlink receive: {e}")),
            }
            let mut rest = &buf[..];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let ty = u16::from_ne_bytes([rest[4], rest[5]]);
                let msg_seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if len < 16 || len > rest.len() {
                    return Err(format!("malformed netlink message of {len} bytes"));
                }
                let (msg, tail) = rest.split_at(len);
                rest = tail.get(len.div_ceil(4) * 4 - len..).unwrap_or_default();
                if msg_seq != seq {
                    continue;
                }
                let last = ty == NLMSG_ERROR || ty == NLMSG_DONE;
                out.push(msg.to_vec());
                if last {
                    return Ok(out);
                }
            }
        }
    }

    /// Sends one raw request and classifies the final answer.
    fn exchange(&mut self, genl_cmd: u8, version: u8, flags: u16, body: &[u8]) -> Result<Answer, String> {
        self.seq = self.seq.wrapping_add(1);
        let msg = message(self.family, flags | NLM_F_ACK, self.seq, genl_cmd, version, body);
        if let Err(e) = self.socket.send(&msg, 0) {
            // The kernel may refuse a request before queueing it.
            return Ok(Answer::Errno(e.raw_os_error().unwrap_or(0)));
        }
        let messages = self.receive_all(self.seq)?;
        let Some(last) = messages.last() else {
            return Err("empty answer".into());
        };
        let ty = u16::from_ne_bytes([last[4], last[5]]);
        if ty == NLMSG_ERROR {
            let errno = last.get(16..20).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            // An ack (0) after a doit reply still means the request was served.
            if errno == 0 && messages.len() > 1 {
                return Ok(Answer::Reply);
            }
            return Ok(Answer::Errno(-errno));
        }
        Ok(Answer::Reply)
    }
}

fn set_timeout(socket: &Socket, timeout: Duration) -> Result<(), String> {
    socket2::SockRef::from(socket)
        .set_read_timeout(Some(timeout))
        .map_err(|e| format!("netlink receive timeout: {e}"))
}

/// A plausible request body for `genl_cmd`: header, CFG_CONTEXT and the
/// struct the command expects, with random field values.
fn template(rng: &mut Rng, genl_cmd: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = NlaWriter::new(&mut buf);
    let minor: u32 = match rng.below(6) {
        0 => rng.next() as u32,
        1 => api::MINOR_ALL,
        2 => api::MINOR_MAX + 1,
        _ => rng.below(4) as u32,
    };
    let flags = if rng.chance(4) { api::FLAG_SET_DEFAULTS } else { 0 };
    let _ = w.put_raw(&minor.to_ne_bytes());
    let _ = w.put_raw(&flags.to_ne_bytes());
    let names: [&[u8]; 4] = [b"fz0", b"fz1", b"", b"a/b"];
    if !rng.chance(8) {
        if let Ok(nest) = w.begin_nest(tla::CFG_CONTEXT) {
            let _ = w.put_str(api::cfg_context::RESOURCE_NAME, names[rng.below(names.len())]);
            if !rng.chance(4) {
                let _ = w.put_u32(api::cfg_context::VOLUME, if rng.chance(8) { rng.next() as u32 } else { rng.below(2) as u32 });
            }
            if rng.chance(3) {
                // sockaddr_in 127.0.0.1:<port>
                let port = (7800 + rng.below(4) as u16).to_be_bytes();
                let mut addr = [0u8; 16];
                addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                addr[2..4].copy_from_slice(&port);
                addr[4..8].copy_from_slice(&[127, 0, 0, 1]);
                let _ = w.put_bytes(api::cfg_context::MY_ADDR, &addr);
                addr[7] = 2;
                let _ = w.put_bytes(api::cfg_context::PEER_ADDR, &addr);
            }
            let _ = w.end_nest(nest);
        }
    }
    let tla_number = match genl_cmd {
        cmd::ATTACH | cmd::CHG_DISK_OPTS => tla::DISK_CONF,
        cmd::CONNECT | cmd::CHG_NET_OPTS => tla::NET_CONF,
        cmd::RESOURCE_OPTS | cmd::NEW_RESOURCE => tla::RESOURCE_OPTS,
        cmd::PRIMARY | cmd::SECONDARY => tla::SET_ROLE_PARMS,
        cmd::DETACH => tla::DETACH_PARMS,
        cmd::DISCONNECT => tla::DISCONNECT_PARMS,
        cmd::NEW_C_UUID => tla::NEW_C_UUID_PARMS,
        cmd::RESIZE => tla::RESIZE_PARMS,
        cmd::START_OV => tla::START_OV_PARMS,
        _ => 1 + rng.below(24) as u16,
    };
    if let Ok(nest) = w.begin_nest(tla_number) {
        for _ in 0..rng.below(8) {
            let field = 1 + rng.below(36) as u16;
            let typed = field | if rng.chance(2) { 1 << 14 } else { 0 };
            let _ = match rng.below(5) {
                0 => w.put_u32(typed, if rng.chance(2) { rng.next() as u32 } else { rng.below(10) as u32 }),
                1 => w.put_u64(typed, rng.next()),
                2 => w.put_flag(typed, rng.chance(2)),
                3 => w.put_str(typed, b"/dev/rdrbd-fuzz-nonexistent"),
                _ => w.put_str(typed, &vec![b'x'; rng.below(200)]),
            };
        }
        let _ = w.end_nest(nest);
    }
    let len = w.len();
    buf.truncate(len);
    buf
}

/// Damages a request the ways a broken or hostile client would.
fn mutate(rng: &mut Rng, body: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !body.is_empty() => {
                let i = rng.below(body.len());
                body[i] ^= 1 << rng.below(8);
            }
            1 => body.truncate(rng.below(body.len() + 1)),
            2 if body.len() > 10 => {
                // An attribute length somewhere in the body.
                let i = 8 + rng.below(body.len() - 10);
                let len = [0u16, 1, 3, 4, 0xffff, rng.next() as u16][rng.below(6)];
                body[i..i + 2].copy_from_slice(&len.to_ne_bytes());
            }
            3 => body.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            4 if body.len() > 12 => {
                // Nest flag or type bits on an attribute header.
                let i = 8 + rng.below(body.len() - 12);
                body[i + 3] ^= 0x80 | 0x40;
            }
            _ => {
                let i = rng.below(body.len() + 1);
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                body.splice(i..i, junk);
            }
        }
    }
}

/// Commands the kernel lets anyone run (status and dumps).
fn unprivileged_allowed(genl_cmd: u8, dump: bool) -> bool {
    matches!(genl_cmd, cmd::GET_STATUS)
        || (dump && matches!(genl_cmd, cmd::GET_RESOURCES | cmd::GET_DEVICES | cmd::GET_CONNECTIONS
            | cmd::GET_PEER_DEVICES | cmd::GET_INITIAL_STATE))
}

fn run(options: &Options) -> Result<bool, String> {
    let mut link = Link::open()?;
    let mut rng = Rng(options.seed);
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let (mut sent, mut replies, mut refused, mut eperm) = (0u64, 0u64, 0u64, 0u64);
    let mut ok = true;
    while Instant::now() < deadline {
        let genl_cmd = if rng.chance(10) { rng.below(256) as u8 } else { 1 + rng.below(41) as u8 };
        let mut body = template(&mut rng, genl_cmd);
        if !rng.chance(4) {
            mutate(&mut rng, &mut body);
        }
        let dump = rng.chance(4);
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        let version = if rng.chance(20) { rng.next() as u8 } else { api::GENL_VERSION };
        let answer = link.exchange(genl_cmd, version, flags, &body)?;
        sent += 1;
        match answer {
            Answer::Reply => replies += 1,
            Answer::Errno(libc::EPERM) => eperm += 1,
            Answer::Errno(_) => refused += 1,
        }
        let known = (1..=41).contains(&genl_cmd);
        if options.unprivileged && known && !unprivileged_allowed(genl_cmd, dump) && answer == Answer::Reply {
            eprintln!("unprivileged request served: command {genl_cmd}, dump {dump}, body {body:02x?}");
            ok = false;
        }
    }
    println!(
        "seed {}: {sent} requests, {replies} answered, {refused} refused with an error, {eperm} with EPERM",
        options.seed
    );
    if options.unprivileged && eperm == 0 {
        eprintln!("no request was refused with EPERM: is this really unprivileged?");
        ok = false;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("drbd-nl-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    println!("drbd-nl-fuzz: seed {} for {} s{}", options.seed, options.seconds,
        if options.unprivileged { ", unprivileged" } else { "" });
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("drbd-nl-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}
