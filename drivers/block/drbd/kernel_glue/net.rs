//! In-kernel TCP sockets (the initial network namespace), shaped like the
//! archived Rust-for-Linux `net` module: bind/listen/accept/connect, and
//! whole-buffer send and receive.

// Used by the replication code (connection, receiver, sender) that is
// being built on top; until then parts of it are unused.
#![allow(dead_code)]

use core::ptr::{self, NonNull};

use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_long, c_void};
use kernel::prelude::*;

use super::block::BlockPages;
use super::shim;

/// An errno the `kernel` crate has no constant for.
fn errno(code: u32) -> Error {
    Error::from_errno(-(code as c_int))
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A socket address as DRBD's netlink API carries it: the raw image of a
/// `struct sockaddr_in` (16 bytes) or `struct sockaddr_in6` (28 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SockAddr {
    bytes: [u8; 28],
    len: usize,
}

impl SockAddr {
    /// Validates a raw sockaddr image: the family must match the length.
    pub(crate) fn from_bytes(raw: &[u8]) -> Option<Self> {
        let family = u16::from_ne_bytes([*raw.first()?, *raw.get(1)?]);
        let len = match family {
            AF_INET => 16,
            AF_INET6 => 28,
            _ => return None,
        };
        let mut bytes = [0u8; 28];
        bytes.get_mut(..len)?.copy_from_slice(raw.get(..len)?);
        Some(Self { bytes, len })
    }

    /// The raw image.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    fn family(&self) -> u16 {
        u16::from_ne_bytes([self.bytes[0], self.bytes[1]])
    }

    /// The port (host order).
    pub(crate) fn port(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// "ipv4" or "ipv6", as drbd.conf and DRBD_PEER_AF name the family.
    pub(crate) fn family_name(&self) -> &'static str {
        if self.family() == AF_INET { "ipv4" } else { "ipv6" }
    }

    /// The address part (4 bytes for IPv4, 16 for IPv6), for logging and
    /// comparing peers.
    pub(crate) fn ip_bytes(&self) -> &[u8] {
        match self.family() {
            AF_INET => &self.bytes[4..8],
            _ => &self.bytes[8..24],
        }
    }

    fn as_mut_ptr(&mut self) -> *mut bindings::sockaddr {
        self.bytes.as_mut_ptr().cast()
    }
}

/// Socket buffer sizes in bytes (`sndbuf-size`, `rcvbuf-size`); 0 leaves
/// the kernel's automatic sizing.
#[derive(Clone, Copy, Default)]
pub(crate) struct SocketBuffers {
    pub(crate) send: u32,
    pub(crate) receive: u32,
}

/// A kernel TCP socket; released on drop.
///
/// # Invariants
///
/// `sock` is a live socket owned by this value, set up for block I/O
/// (GFP_NOIO allocations, no task page fragment: [`Self::for_block_io`]).
pub(crate) struct TcpSocket {
    sock: NonNull<bindings::socket>,
}

impl TcpSocket {
    /// The socket, live while `self` is.
    pub(super) fn as_ptr(&self) -> *mut bindings::socket {
        self.sock.as_ptr()
    }
}

// SAFETY: kernel sockets may be used from any thread; the socket layer
// serialises concurrent senders and receivers with the socket lock.
unsafe impl Send for TcpSocket {}
// SAFETY: as above; a receiver and a sender (and a shutdown) may run at once.
unsafe impl Sync for TcpSocket {}

impl TcpSocket {
    fn create(family: u16) -> Result<Self> {
        let mut sock = ptr::null_mut();
        // SAFETY: `sock` is a valid out-pointer.
        to_result(unsafe { shim::rdrbd_sock_create(c_int::from(family), &mut sock) })?;
        Ok(Self::for_block_io(NonNull::new(sock).ok_or(ENOMEM)?))
    }

    /// Takes ownership of a new socket and makes it fit to carry block I/O
    /// (as 8.4's `conn_connect`): allocations with GFP_NOIO, no task page
    /// fragment. Every socket rdrbd creates or accepts goes through here.
    fn for_block_io(sock: NonNull<bindings::socket>) -> Self {
        // SAFETY: `sock` is a live socket this function now owns.
        unsafe { shim::rdrbd_sock_for_block_io(sock.as_ptr()) };
        Self { sock }
    }

    /// A listening socket bound to `addr`; the sockets it accepts inherit
    /// `buffers`.
    pub(crate) fn listen(addr: &SockAddr, backlog: i32, buffers: SocketBuffers) -> Result<Self> {
        let socket = Self::create(addr.family())?;
        socket.set_buffers(buffers);
        let mut addr = *addr;
        // SAFETY: the socket is live; `addr` is a valid sockaddr of `len` bytes.
        unsafe {
            shim::rdrbd_sock_set_reuseaddr(socket.sock.as_ptr());
            to_result(bindings::kernel_bind(socket.sock.as_ptr(), addr.as_mut_ptr(), addr.len as c_int))?;
            to_result(bindings::kernel_listen(socket.sock.as_ptr(), backlog))?;
        }
        Ok(socket)
    }

    /// Waits (up to the receive timeout) for an incoming connection.
    pub(crate) fn accept(&self) -> Result<Self> {
        let mut new = ptr::null_mut();
        // SAFETY: the socket is a live listener; `new` is a valid out-pointer.
        to_result(unsafe { bindings::kernel_accept(self.sock.as_ptr(), &mut new, 0) })?;
        let socket = Self::for_block_io(NonNull::new(new).ok_or(ENOMEM)?);
        socket.for_swap();
        Ok(socket)
    }

    /// Connects to `peer`, from `local` (port 0: any) if given, with
    /// `buffers`.
    pub(crate) fn connect(local: Option<&SockAddr>, peer: &SockAddr, buffers: SocketBuffers) -> Result<Self> {
        let socket = Self::create(peer.family())?;
        socket.set_buffers(buffers);
        if let Some(local) = local {
            let mut local = *local;
            local.bytes[2] = 0;
            local.bytes[3] = 0;
            // SAFETY: as in `listen`.
            to_result(unsafe {
                bindings::kernel_bind(socket.sock.as_ptr(), local.as_mut_ptr(), local.len as c_int)
            })?;
        }
        let mut peer = *peer;
        // SAFETY: the socket is live; `peer` is a valid sockaddr.
        to_result(unsafe {
            bindings::kernel_connect(socket.sock.as_ptr(), peer.as_mut_ptr(), peer.len as c_int, 0)
        })?;
        socket.for_swap();
        Ok(socket)
    }

    /// A connected socket may carry swap: it may use the memory reserves
    /// (SOCK_MEMALLOC, as nbd's sockets), so that writes freeing memory and
    /// their acks get through when memory is exhausted. Cleared on drop.
    fn for_swap(&self) {
        // SAFETY: the socket is live and connected.
        unsafe { shim::rdrbd_sock_for_swap(self.sock.as_ptr()) };
    }

    /// Receive and send timeouts in jiffies (0: none).
    pub(crate) fn set_timeouts(&self, rcv_jiffies: i64, snd_jiffies: i64) {
        // SAFETY: the socket is live.
        unsafe { shim::rdrbd_sock_set_timeouts(self.sock.as_ptr(), rcv_jiffies as c_long, snd_jiffies as c_long) };
    }

    /// Fixes the buffer sizes that are not 0 (8.4's `drbd_setbufsize`,
    /// before connect or listen).
    fn set_buffers(&self, buffers: SocketBuffers) {
        // SAFETY: the socket is live.
        unsafe { shim::rdrbd_sock_set_buffers(self.sock.as_ptr(), buffers.send, buffers.receive) };
    }

    /// Whether a send of `bytes` fits the send buffer now, so that it
    /// cannot block (as long as only the caller sends: acks only make
    /// room).
    pub(crate) fn has_send_room(&self, bytes: u32) -> bool {
        // SAFETY: the socket is live.
        let room = unsafe { shim::rdrbd_sock_send_room(self.sock.as_ptr()) };
        u32::try_from(room).is_ok_and(|room| room >= bytes)
    }

    /// Disables Nagle: DRBD's acks and small packets must not wait.
    pub(crate) fn set_nodelay(&self) {
        // SAFETY: the socket is live.
        unsafe { shim::rdrbd_sock_set_nodelay(self.sock.as_ptr()) };
    }

    /// Sends all of `buf` (a timeout or error ends the attempt).
    pub(crate) fn send_all(&self, buf: &[u8]) -> Result {
        self.send_all_retrying(buf, false, || false)
    }

    /// Sends all of `buf`; each time the send timeout expires with
    /// nothing sent (EAGAIN), `keep_trying` decides whether to go on.
    /// `more`: what follows at once belongs with it (a packet header before
    /// its payload: MSG_MORE, so that they leave in one segment).
    pub(crate) fn send_all_retrying(&self, mut buf: &[u8], more: bool, mut keep_trying: impl FnMut() -> bool) -> Result {
        while !buf.is_empty() {
            let mut vec = bindings::kvec { iov_base: buf.as_ptr().cast_mut().cast::<c_void>(), iov_len: buf.len() };
            // SAFETY: an all-zero msghdr is a valid "no address, no control" header.
            let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
            msg.msg_flags = bindings::MSG_NOSIGNAL as u32 | if more { bindings::MSG_MORE as u32 } else { 0 };
            // SAFETY: `vec` describes `buf`, valid for reads for the call.
            let sent = unsafe { bindings::kernel_sendmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, buf.len()) };
            if sent == -(bindings::EAGAIN as c_int) && keep_trying() {
                continue;
            }
            if sent < 0 {
                return Err(Error::from_errno(sent));
            }
            let sent = usize::try_from(sent).map_err(|_| EIO)?;
            if sent == 0 {
                return Err(EPIPE);
            }
            buf = buf.get(sent..).ok_or(EIO)?;
        }
        Ok(())
    }

    /// Sends the data of the write behind `token`; each time the send
    /// timeout expires (EAGAIN), `keep_trying` decides whether to go on
    /// from where it stopped. `zero_copy`: the socket references the
    /// pages instead of copying them (MSG_SPLICE_PAGES), for a write whose
    /// bio completes only after the peer has the data (protocols B and C):
    /// its pages stay as sent until then. `more`: another packet follows
    /// at once (MSG_MORE: the tail of the data waits for it, to share its
    /// segment, and the socket pushes once for both).
    pub(crate) fn send_bio_retrying(
        &self,
        token: &super::block::PeerToken,
        zero_copy: bool,
        more: bool,
        mut keep_trying: impl FnMut() -> bool,
    ) -> Result {
        let mut done = 0usize;
        loop {
            // SAFETY: the socket is live; the bio and its pages cannot
            // complete (or be freed) while `token` lives; `done` is a
            // valid in/out count the shim checks against the bio's size.
            // Pages the socket references stay alive by the references
            // it takes.
            let rv = unsafe { shim::rdrbd_sock_send_bio(self.sock.as_ptr(), token.as_ptr(), &mut done, zero_copy, more) };
            if rv == -(bindings::EAGAIN as c_int) && keep_trying() {
                continue;
            }
            return to_result(rv);
        }
    }

    /// Sends the first `len` bytes of `pages` (read there with
    /// [`BlockPages::read_in`]); the socket copies them, so the pages may
    /// be reused at once. Timeouts as [`Self::send_all_retrying`]; `more`
    /// as there.
    pub(crate) fn send_pages_retrying(
        &self,
        pages: &mut BlockPages,
        len: u32,
        more: bool,
        mut keep_trying: impl FnMut() -> bool,
    ) -> Result {
        let array = pages.page_array(len)?;
        let mut done = 0usize;
        loop {
            // SAFETY: the socket is live; `array` holds pages for `len`
            // bytes (checked above), owned by `pages`, which the borrow
            // keeps alive and unchanged for the call; `done` is a valid
            // in/out count the shim checks against `len`.
            let rv = unsafe { shim::rdrbd_sock_send_pages(self.sock.as_ptr(), array, len, &mut done, more) };
            if rv == -(bindings::EAGAIN as c_int) && keep_trying() {
                continue;
            }
            return to_result(rv);
        }
    }

    /// [`Self::recv_exact`] for the start of a packet: when nothing is
    /// buffered yet, first acks what was received at once (TCP quickack,
    /// as 8.4's `drbd_recv_header_maybe_unplug`), so that the peer's send
    /// buffer does not wait for a delayed ack while it waits for us.
    pub(crate) fn recv_exact_acking(&self, buf: &mut [u8]) -> Result {
        let mut vec = bindings::kvec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
        // SAFETY: an all-zero msghdr is a valid "no address, no control" header.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        let flags = (bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL) as c_int;
        // SAFETY: `vec` describes `buf`, valid for writes for the call.
        let got = unsafe { bindings::kernel_recvmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, buf.len(), flags) };
        let got = if got == -(bindings::EAGAIN as c_int) {
            // SAFETY: the socket is live.
            unsafe { shim::rdrbd_sock_quickack(self.sock.as_ptr()) };
            0
        } else if got < 0 {
            return Err(Error::from_errno(got));
        } else if got == 0 && !buf.is_empty() {
            return Err(errno(bindings::ECONNRESET));
        } else {
            usize::try_from(got).map_err(|_| EIO)?
        };
        self.recv_exact(buf.get_mut(got..).ok_or(EIO)?)
    }

    /// Fills all of `buf`; a closed connection is `ECONNRESET`.
    pub(crate) fn recv_exact(&self, mut buf: &mut [u8]) -> Result {
        while !buf.is_empty() {
            let mut vec = bindings::kvec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
            // SAFETY: an all-zero msghdr is a valid "no address, no control" header.
            let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
            let flags = (bindings::MSG_WAITALL | bindings::MSG_NOSIGNAL) as c_int;
            // SAFETY: `vec` describes `buf`, valid for writes for the call.
            let got = unsafe { bindings::kernel_recvmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, buf.len(), flags) };
            if got < 0 {
                return Err(Error::from_errno(got));
            }
            let got = usize::try_from(got).map_err(|_| EIO)?;
            if got == 0 {
                return Err(errno(bindings::ECONNRESET));
            }
            buf = buf.get_mut(got..).ok_or(EIO)?;
        }
        Ok(())
    }

    /// Whether the connection is still up (`drbd_socket_okay`): a peek
    /// that would block or finds data means alive; EOF or an error not.
    pub(crate) fn is_alive(&self) -> bool {
        let mut byte = [0u8; 4];
        let mut vec = bindings::kvec { iov_base: byte.as_mut_ptr().cast::<c_void>(), iov_len: byte.len() };
        // SAFETY: an all-zero msghdr is a valid "no address, no control" header.
        let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
        let flags = (bindings::MSG_PEEK | bindings::MSG_DONTWAIT | bindings::MSG_NOSIGNAL) as c_int;
        // SAFETY: `vec` describes `byte`, valid for writes for the call.
        let got = unsafe { bindings::kernel_recvmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, byte.len(), flags) };
        got > 0 || got == -(bindings::EAGAIN as c_int)
    }

    /// Shuts both directions down: wakes any thread blocked on the socket.
    pub(crate) fn shutdown(&self) {
        // SAFETY: the socket is live.
        unsafe { bindings::kernel_sock_shutdown(self.sock.as_ptr(), bindings::sock_shutdown_cmd_SHUT_RDWR) };
    }

    /// Ends our sending side only: the peer reads what we sent, then EOF.
    pub(crate) fn shutdown_write(&self) {
        // SAFETY: the socket is live.
        unsafe { bindings::kernel_sock_shutdown(self.sock.as_ptr(), bindings::sock_shutdown_cmd_SHUT_WR) };
    }

    /// Reads and discards what the peer still sends until it closes its
    /// side, an error, the receive timeout (`set_timeouts`), or `max_reads`
    /// reads.
    pub(crate) fn drain_until_closed(&self, max_reads: u32) {
        let mut buf = [0u8; 512];
        for _ in 0..max_reads {
            let mut vec = bindings::kvec { iov_base: buf.as_mut_ptr().cast::<c_void>(), iov_len: buf.len() };
            // SAFETY: an all-zero msghdr is a valid "no address, no control" header.
            let mut msg: bindings::msghdr = unsafe { core::mem::zeroed() };
            // SAFETY: `vec` describes `buf`, valid for writes for the call.
            let got = unsafe {
                bindings::kernel_recvmsg(self.sock.as_ptr(), &mut msg, &mut vec, 1, buf.len(), bindings::MSG_NOSIGNAL as c_int)
            };
            if got <= 0 {
                return;
            }
        }
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Result<SockAddr> {
        let mut addr = SockAddr { bytes: [0; 28], len: 28 };
        // SAFETY: `addr` has room for any sockaddr_in/in6.
        let len = unsafe { bindings::kernel_getpeername(self.sock.as_ptr(), addr.as_mut_ptr()) };
        if len < 0 {
            return Err(Error::from_errno(len));
        }
        SockAddr::from_bytes(addr.as_bytes()).ok_or(errno(bindings::EAFNOSUPPORT))
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        // SAFETY: created by us, released once (SOCK_MEMALLOC cleared first).
        unsafe { shim::rdrbd_sock_release(self.sock.as_ptr()) };
    }
}
