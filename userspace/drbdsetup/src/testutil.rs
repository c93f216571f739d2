//! Test helpers: a fake kernel behind the `Transport` trait, and replies
//! built with the same `drbd_include` builder the kernel module uses.

use drbd_include::genl::{
    CfgContext, ConnState, DiskConf, DiskState, ReplyBuilder, ResourceOpts, Role, State, StateInfo,
    MINOR_ALL,
};

use crate::netlink::{Transport, TransportError};

/// Plays the kernel: records requests, answers with canned replies.
#[derive(Debug, Default)]
pub struct FakeKernel {
    /// (cmd, dump, body) of every request.
    pub sent: Vec<(u8, bool, Vec<u8>)>,
    /// The replies: a doit gets the first, a dump all of them.
    pub replies: Vec<Vec<u8>>,
    /// A netlink errno to fail every request with.
    pub error: Option<i32>,
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
