//! Kernel threads running a Rust closure, stopped and reaped on drop
//! (the shape of the archived Rust-for-Linux `Task::spawn`).

// Used by the replication code (connection, receiver, sender) that is
// being built on top; until then parts of it are unused.
#![allow(dead_code)]

use core::ptr::NonNull;

use kernel::bindings;
use kernel::c_str;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// A running kernel thread. Dropping it asks the thread to stop
/// (`kthread_should_stop`, and interrupts its interruptible sleeps) and
/// waits until the closure has returned.
///
/// # Invariants
/// `task` is a kthread created for this, with a reference held until
/// `drop` has stopped it; `closure` is the boxed closure it runs, freed by
/// `drop_closure` (its type's drop) exactly once: by the thread once it
/// started it, else by `drop`.
pub(crate) struct KThread {
    task: NonNull<bindings::task_struct>,
    /// The boxed closure, freed here if the thread never got to run it.
    closure: *mut c_void,
    drop_closure: unsafe fn(*mut c_void),
}

// SAFETY: the handle only stops and reaps the thread, which any thread may do.
unsafe impl Send for KThread {}
// SAFETY: `&KThread` allows nothing.
unsafe impl Sync for KThread {}

/// Our thread function's return value; anything else came from kthread().
const RAN: c_int = 0;

unsafe extern "C" fn run_closure<F: FnOnce() + Send + 'static>(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `KBox<F>` leaked in `spawn`, handed to us once.
    let closure = unsafe { KBox::from_raw(data.cast::<F>()) };
    KBox::into_inner(closure)();
    RAN
}

unsafe fn drop_boxed<F>(data: *mut c_void) {
    // SAFETY: `data` is the `KBox<F>` leaked in `spawn`, never run.
    drop(unsafe { KBox::from_raw(data.cast::<F>()) });
}

impl KThread {
    /// Starts a thread named `name` (shown by ps) running `f`.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(name: &CStr, f: F) -> Result<Self> {
        let closure = KBox::into_raw(KBox::new(f, GFP_KERNEL)?).cast::<c_void>();
        // SAFETY: `run_closure::<F>` matches the thread function signature;
        // "%s" with a NUL-terminated name is a valid format.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(run_closure::<F>),
                closure,
                bindings::NUMA_NO_NODE,
                c_str!("%s").as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = match from_err_ptr(task).map(NonNull::new) {
            Ok(Some(task)) => task,
            Ok(None) | Err(_) => {
                // SAFETY: the thread was not created, the closure is still ours.
                unsafe { drop_boxed::<F>(closure) };
                return Err(ENOMEM);
            }
        };
        // SAFETY: `task` is a new kthread; the reference we take keeps its
        // task_struct for `kthread_stop_put` even after it exits.
        unsafe {
            bindings::get_task_struct(task.as_ptr());
            bindings::wake_up_process(task.as_ptr());
        }
        Ok(Self { task, closure, drop_closure: drop_boxed::<F> })
    }

    /// Whether the current kernel thread was asked to stop.
    pub(crate) fn should_stop() -> bool {
        // SAFETY: only meaningful, and only called, from a KThread closure.
        unsafe { bindings::kthread_should_stop() }
    }
}

impl Drop for KThread {
    fn drop(&mut self) {
        // SAFETY: `task` is our kthread, with the reference taken in `spawn`,
        // which this call drops.
        let ret = unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
        if ret != RAN {
            // Stopped before it ever ran: the closure was never consumed.
            // SAFETY: `closure` is the box of type matching `drop_closure`.
            unsafe { (self.drop_closure)(self.closure) };
        }
    }
}
