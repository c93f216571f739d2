// SPDX-License-Identifier: GPL-2.0
//! The SyncSource's replies, pipelined: the receiver reads the block a
//! P_RS_DATA_REQUEST (or a diskless peer's P_DATA_REQUEST) names into one
//! of two buffers, holding application writes off its activity-log
//! extents, and hands it to the connection's reply thread `drbd_rr_<res>`,
//! which sends it (P_RS_DATA_REPLY / P_DATA_REPLY, from the buffer's pages)
//! and then lets the writes through; meanwhile the receiver reads the next
//! one. 8.4 reads resync blocks asynchronously and sends each from its
//! completion; here the read of one block overlaps the send of the one
//! before. As with a synchronous read, a write to the block after its read
//! reaches the peer after the reply: the range stays held until the reply
//! is in the socket.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

use crate::drbd_include::faults::Fault;
use crate::drbd_include::protocol::{BlockRequest, Packet};
use crate::drbd_req::DeviceIo;
use crate::drbd_sender::Replica;
use crate::kernel_glue::block::BlockPages;
use crate::kernel_glue::thread::KThread;
use crate::kernel_glue::wait::{new_wait_queue, WaitQueue};

/// Buffers, and so replies read and not yet sent, at most.
const BUFFERS: usize = 2;

/// A block read and waiting to be sent.
#[derive(Clone, Copy)]
struct Reply {
    cmd: Packet,
    req: BlockRequest,
    /// Its place in the order of requests (replies leave in that order).
    order: u64,
}

/// A buffer: free, in use (being read into or sent), or read and queued.
enum Slot {
    Free(BlockPages),
    InUse,
    Queued(BlockPages, Reply),
}

#[pin_data]
struct Shared {
    #[pin]
    slots: SpinLock<[Slot; BUFFERS]>,
    /// Woken when a reply is queued and when a buffer is free again.
    #[pin]
    changed: WaitQueue,
    /// The connection is ending: the thread sends nothing more.
    stop: AtomicBool,
    next_order: AtomicU64,
}

/// A connection's reply pipeline; its thread ends (after releasing what
/// it still holds) when it is dropped.
pub(crate) struct ReplyPipeline {
    shared: Arc<Shared>,
    io: Arc<DeviceIo>,
    thread: Option<KThread>,
}

/// The resync-lock slot of buffer `i` (slot 0 is the receiver's own).
fn lock_slot(i: usize) -> usize {
    i + 1
}

impl ReplyPipeline {
    /// Two buffers of `max_bytes` and the reply thread.
    pub(crate) fn start(name: &str, io: Arc<DeviceIo>, replica: Arc<Replica>, max_bytes: usize) -> Result<Self> {
        let buffers = [Slot::Free(BlockPages::new(max_bytes)?), Slot::Free(BlockPages::new(max_bytes)?)];
        let shared = Arc::pin_init(
            pin_init!(Shared {
                slots <- new_spinlock!(buffers, "rdrbd::ReplyPipeline::slots"),
                changed <- new_wait_queue!("rdrbd::ReplyPipeline::changed"),
                stop: AtomicBool::new(false),
                next_order: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )?;
        let thread_name = kernel::str::CString::try_from_fmt(kernel::fmt!("drbd_rr_{}", name))?;
        let (for_thread, thread_io) = (shared.clone(), io.clone());
        let thread = KThread::spawn(&thread_name, move || run(&for_thread, &thread_io, &replica))?;
        Ok(Self { shared, io, thread: Some(thread) })
    }

    /// Reads the block `req` names (injecting `fault` if armed) and queues
    /// `cmd` with it for the thread; waits for a free buffer first. An
    /// error is the read's: nothing was queued, and the range is free.
    pub(crate) fn read_and_queue(&self, io: &DeviceIo, cmd: Packet, req: BlockRequest, fault: Fault) -> Result {
        let shared = &*self.shared;
        let mut taken = None;
        shared.changed.wait_until(|| {
            if shared.stop.load(Ordering::Acquire) {
                return true;
            }
            let mut slots = shared.slots.lock();
            for (i, slot) in slots.iter_mut().enumerate() {
                if matches!(slot, Slot::Free(_)) {
                    if let Slot::Free(pages) = core::mem::replace(slot, Slot::InUse) {
                        taken = Some((i, pages));
                    }
                    return true;
                }
            }
            false
        });
        let Some((i, mut pages)) = taken else { return Err(EPIPE) };
        let read = io.hold_and_read(lock_slot(i), &mut pages, req.sector, req.blksize, fault);
        let order = shared.next_order.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = shared.slots.lock();
            if let Some(slot) = slots.get_mut(i) {
                *slot = match read {
                    Ok(()) => Slot::Queued(pages, Reply { cmd, req, order }),
                    Err(_) => Slot::Free(pages),
                };
            }
        }
        shared.changed.wake_all();
        read
    }
}

impl Drop for ReplyPipeline {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.changed.wake_all();
        // kthread_stop waits for the thread, which releases what is queued.
        drop(self.thread.take());
        // A thread stopped before it ever ran released nothing: a held
        // range would keep application writes off its extent for good.
        let mut slots = self.shared.slots.lock();
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Slot::Queued(..) = slot {
                self.io.release_resync_slot(lock_slot(i));
                *slot = Slot::InUse;
            }
        }
    }
}

/// The reply thread: sends the queued replies in order, each followed by
/// the release of its range; at the end releases what was not sent (the
/// connection is gone: the peer asks again after the next handshake).
fn run(shared: &Shared, io: &DeviceIo, replica: &Replica) {
    loop {
        let mut next = None;
        shared.changed.wait_until(|| {
            let mut slots = shared.slots.lock();
            let oldest = slots
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| match slot {
                    Slot::Queued(_, reply) => Some((reply.order, i)),
                    _ => None,
                })
                .min();
            if let Some((_, i)) = oldest {
                if let Some(slot) = slots.get_mut(i) {
                    if let Slot::Queued(pages, reply) = core::mem::replace(slot, Slot::InUse) {
                        next = Some((i, pages, reply));
                    }
                }
                return true;
            }
            shared.stop.load(Ordering::Acquire) || KThread::should_stop()
        });
        let Some((i, mut pages, reply)) = next else { return };
        let stopping = shared.stop.load(Ordering::Acquire) || KThread::should_stop();
        if !stopping {
            io.count_net(reply.req.blksize, true);
            // A failed send breaks the connection (the receiver sees it).
            let _ = replica.send_block_reply(reply.cmd, reply.req.sector, reply.req.block_id, &mut pages, reply.req.blksize);
        }
        io.release_resync_slot(lock_slot(i));
        if let Some(slot) = shared.slots.lock().get_mut(i) {
            *slot = Slot::Free(pages);
        }
        shared.changed.wake_all();
    }
}
