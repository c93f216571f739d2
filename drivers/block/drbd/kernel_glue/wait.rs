//! Wait queues whose waiters sleep until a condition holds, as the kernel's
//! `wait_event_idle()`: the waiter is queued before it checks the
//! condition, so a wake-up between the check and the sleep is never lost,
//! and wakers share no lock with waiters, so they may run in any context,
//! a bio's completion (interrupt context) included. The 6.12 `kernel`
//! crate's `CondVar` needs a lock that the waker holds too, which interrupt
//! context cannot take.

use core::mem::MaybeUninit;
use core::ptr;

use kernel::bindings;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A lockdep class for a wait queue's spinlock. Lockdep needs it in static
/// storage: one per [`new_wait_queue!`] call site.
#[repr(transparent)]
pub(crate) struct WaitClassKey(Opaque<bindings::lock_class_key>);

// SAFETY: only lockdep reads and writes the key, under its own locking;
// Rust code only takes its address.
unsafe impl Sync for WaitClassKey {}

impl WaitClassKey {
    /// A key for a `static`.
    pub(crate) const fn new() -> Self {
        Self(Opaque::uninit())
    }
}

/// A wait queue for [`WaitQueue::wait_until`] and [`WaitQueue::wake_all`].
///
/// # Invariants
///
/// `head` was initialised by `__init_waitqueue_head` and does not move
/// (the value is pinned) until it is dropped.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: the wait queue head is protected by its own spinlock; any thread
// may wait on it or wake it.
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

/// A [`WaitQueue`] with a lockdep class of its own and `$name` for lockdep.
macro_rules! new_wait_queue {
    ($name:literal) => {{
        static KEY: $crate::kernel_glue::wait::WaitClassKey = $crate::kernel_glue::wait::WaitClassKey::new();
        $crate::kernel_glue::wait::WaitQueue::new(kernel::c_str!($name), &KEY)
    }};
}
pub(crate) use new_wait_queue;

impl WaitQueue {
    /// A wait queue named `name` in lockdep reports, of class `key`.
    pub(crate) fn new(name: &'static CStr, key: &'static WaitClassKey) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes while the closure runs;
            // `name` and `key` are static, so they outlive the queue.
            head <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(slot, name.as_char_ptr(), key.0.get())
            }),
        })
    }

    /// Sleeps until `condition()` holds; returns at once if it already
    /// does. The sleep neither counts as load nor trips the hung-task
    /// detector (`TASK_IDLE`, as `wait_event_idle`): what it waits for
    /// (writes in flight, a resync read) ends on the I/O's own schedule,
    /// and no signal can cut it short. The condition is evaluated with the
    /// task already queued, after every wake-up.
    pub(crate) fn wait_until(&self, mut condition: impl FnMut() -> bool) {
        if condition() {
            return;
        }
        let mut entry = MaybeUninit::<bindings::wait_queue_entry>::uninit();
        let entry = entry.as_mut_ptr();
        // SAFETY: `entry` is valid for writes; it stays in this stack frame,
        // unmoved, until `finish_wait` below has taken it off the queue.
        unsafe { bindings::init_wait_entry(entry, 0) };
        loop {
            // SAFETY: the head is initialised and pinned (type invariant);
            // `entry` was initialised above. TASK_IDLE ignores signals, so
            // this always queues the entry and returns 0.
            unsafe { bindings::prepare_to_wait_event(self.head.get(), entry, bindings::TASK_IDLE as c_int) };
            if condition() {
                break;
            }
            // SAFETY: we are queued; a wake_all after the check above makes
            // us runnable again, so the sleep cannot miss it.
            unsafe { bindings::schedule() };
        }
        // SAFETY: as for `prepare_to_wait_event`; removes `entry` if a
        // waker has not already.
        unsafe { bindings::finish_wait(self.head.get(), entry) };
    }

    /// [`Self::wait_until`], for at most `timeout_ms` milliseconds (a
    /// timer's period: the caller has work due then). Returns whether
    /// `condition()` holds.
    pub(crate) fn wait_until_timeout(&self, mut condition: impl FnMut() -> bool, timeout_ms: u32) -> bool {
        if condition() {
            return true;
        }
        let mut remaining = kernel::ffi::c_long::try_from(kernel::time::msecs_to_jiffies(timeout_ms)).unwrap_or(kernel::ffi::c_long::MAX);
        let mut entry = MaybeUninit::<bindings::wait_queue_entry>::uninit();
        let entry = entry.as_mut_ptr();
        // SAFETY: as in `wait_until`: `entry` stays in this frame until
        // `finish_wait` has taken it off the queue.
        unsafe { bindings::init_wait_entry(entry, 0) };
        let held = loop {
            // SAFETY: as in `wait_until`.
            unsafe { bindings::prepare_to_wait_event(self.head.get(), entry, bindings::TASK_IDLE as c_int) };
            if condition() {
                break true;
            }
            if remaining <= 0 {
                break false;
            }
            // SAFETY: we are queued in TASK_IDLE; the sleep ends at a wake-up
            // or after `remaining` jiffies, and returns what is left.
            remaining = unsafe { bindings::schedule_timeout(remaining) };
        };
        // SAFETY: as in `wait_until`.
        unsafe { bindings::finish_wait(self.head.get(), entry) };
        held
    }

    /// Sleeps until `condition()` holds, or the calling kthread is asked
    /// to stop (`kthread_stop` wakes it), for at most `timeout_ms`: a
    /// deliberate pause (a retry interval) that a stop cuts short.
    pub(crate) fn pause_unless(&self, condition: impl FnMut() -> bool, timeout_ms: u32) -> bool {
        let mut condition = condition;
        self.wait_until_timeout(|| condition() || super::thread::KThread::should_stop(), timeout_ms)
    }

    /// Wakes every waiter to check its condition again. Callable from any
    /// context, interrupt handlers included.
    pub(crate) fn wake_all(&self) {
        // SAFETY: the head is initialised (type invariant); TASK_NORMAL
        // wakes every sleeper, `nr` 0 includes the exclusive ones.
        unsafe { bindings::__wake_up(self.head.get(), bindings::TASK_NORMAL, 0, ptr::null_mut()) };
    }
}

/// Sleeps until `condition()` holds, woken by [`wake_var`] on `var` (the
/// kernel's `wait_var_event` over its hashed wait queues): for a counter
/// whose last decrement may be the last access to the memory that holds
/// it, so that its waker may not touch a wait queue of that memory.
pub(crate) fn wait_var_until<T>(var: &T, mut condition: impl FnMut() -> bool) {
    if condition() {
        return;
    }
    let key = ptr::from_ref(var).cast_mut().cast::<core::ffi::c_void>();
    let mut entry = MaybeUninit::<bindings::wait_bit_queue_entry>::uninit();
    let entry = entry.as_mut_ptr();
    // SAFETY: `entry` is valid for writes and stays in this frame, unmoved,
    // until `finish_wait` below; `key` is only used as a hash key and for
    // comparison, never dereferenced.
    let head = unsafe {
        bindings::init_wait_var_entry(entry, key, 0);
        bindings::__var_waitqueue(key)
    };
    loop {
        // SAFETY: `head` is the static hashed queue for `key`; the entry
        // was initialised above. TASK_IDLE: see `WaitQueue::wait_until`.
        unsafe { bindings::prepare_to_wait_event(head, &raw mut (*entry).wq_entry, bindings::TASK_IDLE as c_int) };
        if condition() {
            break;
        }
        // SAFETY: we are queued; a `wake_var` after the check above makes
        // us runnable again.
        unsafe { bindings::schedule() };
    }
    // SAFETY: as for `prepare_to_wait_event`.
    unsafe { bindings::finish_wait(head, &raw mut (*entry).wq_entry) };
}

/// Wakes the waiters of [`wait_var_until`] on `var` (`wake_up_var`), after
/// a full barrier that orders the caller's change before the look at the
/// queue. `var` may already be freed: only its address is used.
pub(crate) fn wake_var<T>(var: *const T) {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    // SAFETY: `wake_up_var` hashes the address and compares it with the
    // waiters' keys; it never dereferences it.
    unsafe { bindings::wake_up_var(var.cast_mut().cast::<core::ffi::c_void>()) };
}
