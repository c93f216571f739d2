//! Generic netlink: the `drbd` family (DRBD 8.4's, API version 1).
//!
//! The family, its ops table and multicast group are static tables in the C
//! shim. Attributes are not parsed by the kernel's policy code: every
//! request's payload (the DRBD user header and the attributes after it)
//! comes here as bytes, and the owner parses and validates it in safe Rust
//! (`include/src/genl.rs`), then writes the reply's user header and
//! attributes into the reply message's tailroom.

use kernel::ffi::{c_long, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

use super::shim;

/// What the owner of the family does with requests.
pub(crate) trait GenlHandler: Send + Sync {
    /// Handles one doit request. `request` starts at the DRBD user header;
    /// the reply (user header + attributes) is written to the start of
    /// `reply`. Returns the number of reply bytes written.
    fn doit(&self, cmd: u8, request: &[u8], reply: &mut [u8]) -> Result<usize>;

    /// Writes the next object of a dump into `reply`, starting at position
    /// `cursor` (0 on the first call; the handler advances it). The message
    /// goes out as command `reply_cmd` (preset to `cmd`; GET_INITIAL_STATE
    /// answers with notifications). Returns the bytes written, `Ok(0)`
    /// when there is nothing more, or an error (e.g. `EMSGSIZE`) to end
    /// this batch.
    fn dump(&self, cmd: u8, request: &[u8], cursor: &mut i64, reply_cmd: &mut u8, reply: &mut [u8]) -> Result<usize>;
}

/// The registered `drbd` family; requests reach the handler while this
/// lives. There is one family, so only module init creates this, once.
///
/// # Invariants
/// The family is registered with the address of `*_handler` as its context
/// (the shim's trampolines are not generic: they find the handler there).
pub(crate) struct GenlFamily {
    _handler: KBox<Arc<dyn GenlHandler>>,
}

impl GenlFamily {
    /// Registers the family with `owner` as its request handler.
    pub(crate) fn register<T: GenlHandler + 'static>(owner: Arc<T>) -> Result<Self> {
        let owner: Arc<dyn GenlHandler> = owner;
        let handler = KBox::new(owner, GFP_KERNEL)?;
        let ctx = core::ptr::from_ref::<Arc<dyn GenlHandler>>(&handler).cast_mut().cast::<c_void>();
        // SAFETY: `ctx` stays valid until `drop` unregisters the family:
        // the box is `self`'s and its contents never move.
        kernel::error::to_result(unsafe { shim::rdrbd_genl_register(ctx) })?;
        // INVARIANT: registered with the address of `*handler`.
        Ok(Self { _handler: handler })
    }
}

/// The handler registered with the family.
///
/// # Safety
/// `ctx` is the context the family was registered with by
/// [`GenlFamily::register`], and the family is still registered.
unsafe fn handler<'a>(ctx: *mut c_void) -> &'a dyn GenlHandler {
    // SAFETY: per the contract, the address of a live
    // `Arc<dyn GenlHandler>` (`GenlFamily`'s invariant).
    unsafe { &**ctx.cast_const().cast::<Arc<dyn GenlHandler>>() }
}

impl Drop for GenlFamily {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; unregistering waits for running
        // doit/dump callbacks (they run under the genl lock).
        unsafe { shim::rdrbd_genl_unregister() };
    }
}

/// Builds the request and reply slices the shim hands us.
///
/// # Safety
/// `req` must be valid for reads of `req_len` bytes, `reply` for writes of
/// `reply_cap` bytes, and the two must not overlap, for the call's duration.
unsafe fn buffers<'a>(req: *const u8, req_len: usize, reply: *mut u8, reply_cap: usize)
    -> (&'a [u8], &'a mut [u8])
{
    // SAFETY: guaranteed by the caller; an empty request may come as any
    // pointer, so avoid building a slice from it.
    unsafe {
        let request = if req_len == 0 { &[][..] } else { core::slice::from_raw_parts(req, req_len) };
        (request, core::slice::from_raw_parts_mut(reply, reply_cap))
    }
}

fn to_c_long(result: Result<usize>) -> c_long {
    match result {
        Ok(len) => c_long::try_from(len).unwrap_or(-(kernel::bindings::EMSGSIZE as c_long)),
        Err(e) => e.to_errno() as c_long,
    }
}

/// Called by the shim's `doit` for a request of the family.
///
/// # Safety
/// `ctx` is the owner registered with `rdrbd_genl_register`, alive while
/// the family is; `req` is valid for reads of `req_len` bytes (or
/// `req_len` is 0) and `reply` for writes of `reply_cap` bytes, in two
/// distinct buffers, for the call.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_genl_doit(
    ctx: *mut c_void,
    cmd: u8,
    req: *const u8,
    req_len: usize,
    reply: *mut u8,
    reply_cap: usize,
) -> c_long {
    // SAFETY: the shim passes the registered owner and the request payload
    // and reply tailroom of two distinct skbs.
    let (owner, (request, reply)) =
        unsafe { (handler(ctx), buffers(req, req_len, reply, reply_cap)) };
    to_c_long(owner.doit(cmd, request, reply))
}

/// Called by the shim's `dumpit` for one part of a dump.
///
/// # Safety
/// As for `rdrbd_rs_genl_doit`; `cursor` and `reply_cmd` are valid for
/// reads and writes for the call (the dump's netlink_callback and a local
/// of the shim's dump loop).
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_genl_dump(
    ctx: *mut c_void,
    cmd: u8,
    req: *const u8,
    req_len: usize,
    cursor: *mut c_long,
    reply_cmd: *mut u8,
    reply: *mut u8,
    reply_cap: usize,
) -> c_long {
    // SAFETY: as in `rdrbd_rs_genl_doit`; `cursor` points into the dump's
    // netlink_callback, which outlives the call, `reply_cmd` to a local of
    // the shim's dump loop.
    let (owner, (request, reply), cursor, reply_cmd) = unsafe {
        (handler(ctx), buffers(req, req_len, reply, reply_cap), &mut *cursor, &mut *reply_cmd)
    };
    let mut position = *cursor as i64;
    let result = owner.dump(cmd, request, &mut position, reply_cmd, reply);
    *cursor = position as c_long;
    match result {
        Ok(len) => to_c_long(Ok(len)),
        Err(e) => e.to_errno() as c_long,
    }
}

/// Sends `msg` (DRBD user header + attributes) to the family's `events`
/// multicast group as command `cmd` with sequence number `seq`. Nobody
/// listening is not an error. Sleeps (allocates with GFP_NOIO): process
/// context only.
pub(crate) fn multicast_event(cmd: u8, seq: u32, msg: &[u8]) -> Result {
    // SAFETY: `msg` is valid for reads of `msg.len()` bytes for the call;
    // the shim copies it and checks that the family is registered.
    let err = unsafe { shim::rdrbd_genl_multicast(cmd, seq, msg.as_ptr(), msg.len()) };
    if err == -(kernel::bindings::ESRCH as i32) {
        return Ok(());
    }
    kernel::error::to_result(err)
}

/// Whether the task making the current request has CAP_SYS_ADMIN (DRBD
/// shows it the shared secret; others get the configuration without it).
pub(crate) fn requester_is_sys_admin() -> bool {
    // SAFETY: `capable` only looks at the current task's credentials.
    unsafe { shim::rdrbd_capable_sys_admin() }
}
