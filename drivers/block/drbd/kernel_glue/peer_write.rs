//! Writes to the backing disk that the receiver submits for the peer and
//! does not wait for (8.4's peer requests on `active_ee`): each has pages
//! of its own, and its completion, in any context, queues it on its
//! [`PeerWriteQueue`] for a thread that answers the peer.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::block::{request_done, LowerGate, LowerRef};
use super::net::TcpSocket;
use super::shim::{self, rdrbd_peer_write};
use super::wait::{new_wait_queue, wait_var_until, wake_var, WaitQueue};
use kernel::error::to_result;

/// The part of a queue a completion touches: not generic, since the
/// completion callback is not.
///
/// # Invariants
/// `done` is an initialised `llist_head`; every node on it belongs to a
/// completed `rdrbd_peer_write` submitted through the queue that owns this.
#[pin_data]
struct QueueCore {
    done: Opaque<bindings::llist_head>,
    in_flight: AtomicU32,
    #[pin]
    wake: WaitQueue,
}

/// Completed peer writes waiting for process context, each carrying the
/// owner's `T` (a small `Copy` value kept in the write itself, so that
/// nothing more is allocated per write).
///
/// # Invariants
/// Every write queued on `core` carries a `T` in its owner area. The queue
/// is dropped only after every write submitted through it has completed
/// (its drop waits for that).
#[pin_data(PinnedDrop)]
pub(crate) struct PeerWriteQueue<T> {
    #[pin]
    core: QueueCore,
    _data: PhantomData<T>,
}

// SAFETY: the list is lock-free (llist), the counter atomic, the wait queue
// has its own lock; the `T`s move between threads with their writes.
unsafe impl<T: Send> Send for PeerWriteQueue<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for PeerWriteQueue<T> {}

/// A peer write not submitted yet: its pages filled, its `T` attached.
///
/// # Invariants
/// `pw` is a live `rdrbd_peer_write` owned by this, not submitted, with a
/// `T` in its owner area.
pub(crate) struct PeerWrite<T> {
    pw: NonNull<rdrbd_peer_write>,
    _data: PhantomData<T>,
}

// SAFETY: the write and its `T` are owned by this alone.
unsafe impl<T: Send> Send for PeerWrite<T> {}

/// A completed peer write taken off its queue.
///
/// # Invariants
/// As [`PeerWrite`], but completed: its status is final and the gate's
/// in-flight count it held is given back.
pub(crate) struct DoneWrite<T> {
    pw: NonNull<rdrbd_peer_write>,
    _data: PhantomData<T>,
}

/// Frees a write that is not in flight.
///
/// # Safety
/// `pw` is live, not in flight, and not used afterwards.
unsafe fn free_write(pw: NonNull<rdrbd_peer_write>) {
    // SAFETY: by the caller's guarantee the write is ours to free.
    unsafe { shim::rdrbd_peer_write_free(pw.as_ptr()) };
}

/// The size of a write's owner area (`u64 owner[6]` in the shim).
const OWNER_BYTES: usize = 48;

impl<T: Copy> PeerWrite<T> {
    /// A write of `len` bytes at `sector` of the backing device behind
    /// `lower` (FUA / PREFLUSH as asked), carrying `owner` for the
    /// completion's reader; its data comes from [`Self::fill`] or
    /// [`Self::receive`]. Allocates with GFP_NOIO: ENOMEM when memory is
    /// short.
    pub(crate) fn new(lower: &LowerRef<'_>, sector: u64, len: u32, fua: bool, flush: bool, owner: T) -> Result<Self> {
        const { assert!(core::mem::size_of::<T>() <= OWNER_BYTES && core::mem::align_of::<T>() <= 8) };
        // SAFETY: the backing device is open while `lower` lives.
        let pw = unsafe { shim::rdrbd_peer_write_alloc(lower.bdev_ptr(), len, sector, fua, flush) };
        let pw = NonNull::new(pw).ok_or(ENOMEM)?;
        // SAFETY: the owner area is 48 bytes, 8-byte aligned (asserted
        // above to hold a `T`), and ours.
        unsafe { ptr::write(shim::rdrbd_peer_write_owner(pw.as_ptr()).cast::<T>(), owner) };
        // INVARIANT: live, not submitted, a `T` in its owner area.
        Ok(Self { pw, _data: PhantomData })
    }

    /// Copies the write's data from `data` (exactly its size).
    pub(crate) fn fill(&mut self, data: &[u8]) -> Result {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: the write is live and not submitted (invariant); `data`
        // is valid for `len` bytes; the shim checks `len` against the
        // write's size.
        to_result(unsafe { shim::rdrbd_peer_write_fill(self.pw.as_ptr(), data.as_ptr(), len) })
    }

    /// The `data-integrity-alg` digest of the write's data (filled or
    /// received already).
    pub(crate) fn digest(&self, digest: &super::crypto::Digest) -> Result<super::crypto::DigestValue> {
        // SAFETY: the write is live and not submitted (invariant): its
        // pages are ours and unchanged during the call; the shim gets a
        // live transform and a buffer for its digest.
        digest.of_pages(|tfm, out| unsafe { shim::rdrbd_peer_write_digest(self.pw.as_ptr(), tfm, out) })
    }

    /// Receives the write's data (its whole size) from `sock` straight
    /// into its pages. A closed connection is `ECONNRESET` (as
    /// `TcpSocket::recv_exact`).
    pub(crate) fn receive(&mut self, sock: &TcpSocket) -> Result {
        let mut done = 0usize;
        // SAFETY: the write is live and not submitted (invariant), so its
        // pages are ours to fill; the socket is live while `sock` is;
        // `done` is a valid in/out count the shim checks.
        to_result(unsafe { shim::rdrbd_peer_write_recv(self.pw.as_ptr(), sock.as_ptr(), &mut done) })
    }
}

impl<T> Drop for PeerWrite<T> {
    fn drop(&mut self) {
        // SAFETY: not submitted (invariant), so not in flight.
        unsafe { free_write(self.pw) };
    }
}

impl<T: Copy> DoneWrite<T> {
    /// What the owner attached.
    pub(crate) fn owner(&self) -> T {
        // SAFETY: the owner area holds a `T` (invariant).
        unsafe { ptr::read(shim::rdrbd_peer_write_owner(self.pw.as_ptr()).cast::<T>()) }
    }

    /// How the backing device answered.
    pub(crate) fn result(&self) -> Result {
        // SAFETY: the write is live and completed (invariant).
        to_result(unsafe { shim::rdrbd_peer_write_status(self.pw.as_ptr()) })
    }
}

impl<T> Drop for DoneWrite<T> {
    fn drop(&mut self) {
        // SAFETY: completed (invariant), so not in flight.
        unsafe { free_write(self.pw) };
    }
}

impl<T> PeerWriteQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            core <- pin_init!(QueueCore {
                // INVARIANT: a zeroed llist_head is the empty list.
                done: Opaque::new(bindings::llist_head { first: ptr::null_mut() }),
                in_flight: AtomicU32::new(0),
                wake <- new_wait_queue!("rdrbd::PeerWriteQueue::wake"),
            }),
            _data: PhantomData,
        })
    }

    /// Submits `write` to the backing device behind `lower` (whose
    /// in-flight count it keeps until it completes); it comes back through
    /// [`Self::take_done`].
    pub(crate) fn submit(&self, lower: LowerRef<'_>, write: PeerWrite<T>) {
        let pw = write.pw;
        core::mem::forget(write);
        let (gate, slot) = lower.into_request();
        self.core.in_flight.fetch_add(1, Ordering::SeqCst);
        // SAFETY: `pw` is live and not submitted; its completion finds this
        // queue (which outlives it: the drop waits for `in_flight`) and the
        // gate (kept alive by the in-flight count it now holds).
        unsafe {
            *shim::rdrbd_peer_write_queue(pw.as_ptr()) = ptr::from_ref(&self.core).cast_mut().cast::<c_void>();
            *shim::rdrbd_peer_write_gate(pw.as_ptr()) = gate.cast_mut().cast::<c_void>();
            *shim::rdrbd_peer_write_age_slot(pw.as_ptr()) = slot;
            shim::rdrbd_peer_write_submit(pw.as_ptr());
        }
    }

    /// Whether a completed write waits to be taken.
    pub(crate) fn has_done(&self) -> bool {
        // SAFETY: the head is initialised (invariant).
        !unsafe { shim::rdrbd_llist_empty(self.core.done.get()) }
    }

    /// Sleeps until `condition` holds; completions wake it (and so may
    /// [`Self::wake`]). `condition` must not sleep.
    pub(crate) fn wait_until(&self, condition: impl FnMut() -> bool) {
        self.core.wake.wait_until(condition);
    }

    /// Wakes whoever waits in [`Self::wait_until`].
    pub(crate) fn wake(&self) {
        self.core.wake.wake_all();
    }

    /// Takes every completed write, in the order they completed.
    pub(crate) fn take_done(&self) -> DoneWrites<T> {
        // INVARIANT: the detached chain is ours; its writes carry `T`s.
        // SAFETY: the head is initialised.
        DoneWrites { cursor: unsafe { shim::rdrbd_llist_take_all(self.core.done.get()) }, _data: PhantomData }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for PeerWriteQueue<T> {
    fn drop(self: Pin<&mut Self>) {
        // Every completion must have run before the queue goes: they
        // touch it. The last one wakes us by the counter's address.
        let in_flight = &self.core.in_flight;
        wait_var_until(in_flight, || in_flight.load(Ordering::SeqCst) == 0);
        drop(self.take_done());
    }
}

/// Completed writes taken off a [`PeerWriteQueue`]; those not taken are
/// freed on drop.
///
/// # Invariants
/// `cursor` starts a chain of completed writes that this owns, each with a
/// `T` in its owner area.
pub(crate) struct DoneWrites<T> {
    cursor: *mut bindings::llist_node,
    _data: PhantomData<T>,
}

impl<T> Iterator for DoneWrites<T> {
    type Item = DoneWrite<T>;

    fn next(&mut self) -> Option<DoneWrite<T>> {
        // SAFETY: `cursor` walks the chain this owns (invariant).
        let pw = unsafe { shim::rdrbd_peer_write_next(&mut self.cursor) };
        // INVARIANT: each write of the chain is handed out once, completed.
        NonNull::new(pw).map(|pw| DoneWrite { pw, _data: PhantomData })
    }
}

impl<T> Drop for DoneWrites<T> {
    fn drop(&mut self) {
        for done in self.by_ref() {
            drop(done);
        }
    }
}

/// Called by the shim when a peer write completes (any context): back to
/// its queue, the waiter woken, the gate's in-flight count given back.
///
/// # Safety
/// `pw` was submitted by [`PeerWriteQueue::submit`] and completes now, once.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_peer_write_done(pw: *mut rdrbd_peer_write) {
    // SAFETY: `submit` set these; the queue outlives the write (its drop
    // waits for `in_flight`) and the gate is held by the in-flight count.
    unsafe {
        let core = &*(*shim::rdrbd_peer_write_queue(pw)).cast::<QueueCore>();
        let gate = (*shim::rdrbd_peer_write_gate(pw)).cast::<LowerGate>().cast_const();
        let slot = *shim::rdrbd_peer_write_age_slot(pw);
        // The list owns the write from here.
        shim::rdrbd_peer_write_push(core.done.get(), pw);
        core.wake.wake_all();
        // Last access to the queue: once zero, its drop may finish.
        let counter = ptr::from_ref(&core.in_flight);
        if core.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            wake_var(counter);
        }
        request_done(gate, slot);
    }
}
