//! Test helpers: a fake kernel behind the `Transport` trait, and replies
//! built with the same `drbd_include` builder the kernel module uses.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use drbd_include::genl::{
    CfgContext, ConnState, DiskConf, DiskState, ReplyBuilder, ResourceOpts, Role, State, StateInfo,
    MINOR_ALL,
};

use crate::netlink::{Incoming, Transport, TransportError};

/// The error a fake kernel gives when it has nothing more to say (what
/// drbdsetup-84 under the capture shim reports as exit status 99).
pub fn exhausted() -> TransportError {
    TransportError::Io {
        context: "fake kernel",
        source: io::Error::new(io::ErrorKind::UnexpectedEof, "no more messages"),
    }
}

/// Whether `error` is [`exhausted`].
pub fn is_exhausted(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::Io {
            context: "fake kernel",
            ..
        }
    )
}

/// Plays the kernel: records requests, answers with canned replies.
#[derive(Debug, Default)]
pub struct FakeKernel {
    /// (cmd, dump, body) of every request.
    pub sent: Vec<(u8, bool, Vec<u8>)>,
    /// The replies: a doit gets the first, a dump all of them.
    pub replies: Vec<Vec<u8>>,
    /// A netlink errno to fail every request with.
    pub error: Option<i32>,
    /// What `receive` hands out, in order; then [`exhausted`].
    pub incoming: VecDeque<Incoming>,
    /// Whether `subscribe` was called.
    pub subscribed: bool,
    /// Whether `receive` times out (instead of failing) once `incoming` is
    /// empty.
    pub timeout_when_empty: bool,
}

impl FakeKernel {
    /// A fake kernel answering with `replies`.
    pub fn answering(replies: Vec<Vec<u8>>) -> Self {
        Self {
            replies,
            ..Self::default()
        }
    }
}

impl Transport for FakeKernel {
    fn subscribe(&mut self) -> Result<(), TransportError> {
        self.subscribed = true;
        Ok(())
    }

    fn send(&mut self, cmd: u8, body: &[u8], dump: bool) -> Result<u32, TransportError> {
        self.sent.push((cmd, dump, body.to_vec()));
        Ok(u32::try_from(self.sent.len()).unwrap_or(u32::MAX))
    }

    fn receive(&mut self, _timeout: Option<Duration>) -> Result<Option<Incoming>, TransportError> {
        if let Some(errno) = self.error {
            return Err(TransportError::Netlink(errno));
        }
        match self.incoming.pop_front() {
            Some(incoming) => Ok(Some(incoming)),
            None if self.timeout_when_empty => Ok(None),
            None => Err(exhausted()),
        }
    }

    fn doit(&mut self, cmd: u8, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.push((cmd, false, body.to_vec()));
        match self.error {
            Some(errno) => Err(TransportError::Netlink(errno)),
            None => Ok(self.replies.first().cloned().unwrap_or_default()),
        }
    }

    fn dump(&mut self, cmd: u8, body: &[u8]) -> Result<Vec<Vec<u8>>, TransportError> {
        self.sent.push((cmd, true, body.to_vec()));
        match self.error {
            Some(errno) => Err(TransportError::Netlink(errno)),
            None => Ok(self.replies.clone()),
        }
    }
}

/// A reply with `code` and, if not empty, a CFG_REPLY info text.
pub fn reply_with(minor: u32, code: i32, info: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut reply = ReplyBuilder::new(&mut buf, minor).unwrap();
    reply.set_ret_code(code).unwrap();
    reply.put_info_text(info).unwrap();
    reply.bytes().to_vec()
}

/// A standalone state word with the given role and disk.
pub fn state(role: Role, disk: DiskState) -> u32 {
    State {
        role,
        peer: Role::Unknown,
        conn: ConnState::StandAlone,
        disk,
        pdsk: DiskState::DUnknown,
        susp: false,
        aftr_isp: false,
        peer_isp: false,
        user_isp: false,
        susp_nod: false,
        susp_fen: false,
    }
    .to_u32()
}

/// A GET_STATUS message about one device, as the kernel module builds it;
/// attached devices (with `backing`) have 204800 sectors.
pub fn status_reply(
    resource: &str,
    minor: u32,
    volume: u32,
    word: u32,
    backing: Option<&str>,
) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let mut reply = ReplyBuilder::new(&mut buf, minor).unwrap();
    reply
        .put_cfg_context(&CfgContext {
            volume: Some(volume),
            resource_name: Some(resource.as_bytes()),
            ..CfgContext::default()
        })
        .unwrap();
    reply.put_resource_opts(&ResourceOpts::default()).unwrap();
    if let Some(dev) = backing {
        reply
            .put_disk_conf(&DiskConf {
                backing_dev: dev.as_bytes(),
                meta_dev: dev.as_bytes(),
                meta_dev_idx: -3,
                ..DiskConf::default()
            })
            .unwrap();
    }
    reply
        .put_state_info(&StateInfo {
            sib_reason: 1,
            current_state: word,
            capacity: if backing.is_some() { 204_800 } else { 0 },
            ..StateInfo::default()
        })
        .unwrap();
    reply.bytes().to_vec()
}

/// A GET_STATUS message about a resource without volumes.
pub fn resource_only(resource: &str) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut reply = ReplyBuilder::new(&mut buf, MINOR_ALL).unwrap();
    reply
        .put_cfg_context(&CfgContext {
            resource_name: Some(resource.as_bytes()),
            ..CfgContext::default()
        })
        .unwrap();
    reply.bytes().to_vec()
}

/// One line of a golden `.replies` script (see golden/capture84.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptLine {
    /// A reply to the last request: genl cmd and DRBD body.
    Reply(u8, Vec<u8>),
    /// A message with its own sequence number (a notification).
    Event(u32, u8, Vec<u8>),
    /// NLMSG_DONE.
    Done,
}

/// A kernel that answers from a script, the way the capture shim answers
/// drbdsetup-84; `doit` and `dump` are the trait's, built on send/receive.
#[derive(Debug, Default)]
pub struct ScriptedKernel {
    /// (cmd, dump, body) of every request.
    pub sent: Vec<(u8, bool, Vec<u8>)>,
    /// What is left of the script.
    pub script: VecDeque<ScriptLine>,
    seq: u32,
}

impl ScriptedKernel {
    /// A kernel answering with `script`.
    pub fn new(script: Vec<ScriptLine>) -> Self {
        Self {
            script: script.into(),
            ..Self::default()
        }
    }
}

impl Transport for ScriptedKernel {
    fn subscribe(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    fn send(&mut self, cmd: u8, body: &[u8], dump: bool) -> Result<u32, TransportError> {
        self.sent.push((cmd, dump, body.to_vec()));
        self.seq += 1;
        Ok(self.seq)
    }

    fn receive(&mut self, _timeout: Option<Duration>) -> Result<Option<Incoming>, TransportError> {
        let line = self.script.pop_front().ok_or_else(exhausted)?;
        Ok(Some(match line {
            ScriptLine::Reply(cmd, body) => Incoming::Message {
                seq: self.seq,
                cmd,
                body,
            },
            ScriptLine::Event(seq, cmd, body) => Incoming::Message { seq, cmd, body },
            ScriptLine::Done => Incoming::Done { seq: self.seq },
        }))
    }
}

/// A kernel that refuses every request with EOPNOTSUPP, as the SEG6
/// family does under the capture shim; records what was sent.
#[derive(Debug, Default)]
pub struct RefusingKernel {
    /// (cmd, dump, body) of every request.
    pub sent: Vec<(u8, bool, Vec<u8>)>,
}

impl Transport for RefusingKernel {
    fn subscribe(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    fn send(&mut self, cmd: u8, body: &[u8], dump: bool) -> Result<u32, TransportError> {
        self.sent.push((cmd, dump, body.to_vec()));
        Ok(1)
    }

    fn receive(&mut self, _timeout: Option<Duration>) -> Result<Option<Incoming>, TransportError> {
        Err(TransportError::Netlink(libc::EOPNOTSUPP))
    }
}

/// A reply body about `minor` with `ret_code`, filled in by `build`.
pub fn message(minor: u32, ret_code: i32, build: impl FnOnce(&mut ReplyBuilder<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut reply = ReplyBuilder::new(&mut buf, minor).unwrap();
    reply.set_ret_code(ret_code).unwrap();
    build(&mut reply);
    reply.bytes().to_vec()
}
