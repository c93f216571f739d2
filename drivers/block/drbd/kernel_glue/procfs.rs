//! `/proc/drbd`: a single-open seq_file whose text the owner writes.

use core::fmt;

use kernel::bindings;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;

use super::shim;

/// What the owner of `/proc/drbd` shows.
pub(crate) trait ProcShow: Send + Sync {
    /// Writes the whole file.
    fn show(&self, out: &mut SeqFile) -> fmt::Result;
}

/// `/proc/drbd`, present while this lives. Only module init creates it.
///
/// # Invariants
/// The entry is created with the address of `*_shown` as its context (the
/// shim's trampoline is not generic: it finds the owner there).
pub(crate) struct ProcEntry {
    _shown: KBox<Arc<dyn ProcShow>>,
}

impl ProcEntry {
    /// Creates `/proc/drbd`, shown by `owner`.
    pub(crate) fn create<T: ProcShow + 'static>(owner: Arc<T>) -> Result<Self> {
        let owner: Arc<dyn ProcShow> = owner;
        let shown = KBox::new(owner, GFP_KERNEL)?;
        let ctx = core::ptr::from_ref::<Arc<dyn ProcShow>>(&shown).cast_mut().cast::<c_void>();
        // SAFETY: `ctx` stays valid until `drop` removes the entry: the box
        // is `self`'s and its contents never move.
        kernel::error::to_result(unsafe { shim::rdrbd_proc_create(ctx) })?;
        // INVARIANT: created with the address of `*shown`.
        Ok(Self { _shown: shown })
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        // SAFETY: created in `create`; removal waits for running readers.
        unsafe { shim::rdrbd_proc_remove() };
    }
}

/// The seq_file being filled; text goes in with `write!`.
pub(crate) struct SeqFile(*mut bindings::seq_file);

impl fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `self.0` is the seq_file of the running show callback and
        // `s` is valid for `s.len()` bytes. On overflow seq_file retries the
        // whole show with a bigger buffer, so the return value is not an error.
        unsafe { bindings::seq_write(self.0, s.as_ptr().cast::<c_void>(), s.len()) };
        Ok(())
    }
}

/// Called by the shim's seq_file `show` for `/proc/drbd`.
///
/// # Safety
/// `ctx` is the owner registered in `ProcEntry::create`, alive while the
/// entry exists; `seq` is the seq_file being shown, for the call.
#[no_mangle]
unsafe extern "C" fn rdrbd_rs_proc_show(ctx: *mut c_void, seq: *mut bindings::seq_file) -> i32 {
    // SAFETY: `ctx` is the address of the `Arc<dyn ProcShow>` the entry
    // was created with, alive while the entry exists (`ProcEntry`'s
    // invariant); `seq` is the seq_file being shown.
    let owner: &dyn ProcShow = unsafe { &**ctx.cast_const().cast::<Arc<dyn ProcShow>>() };
    let mut out = SeqFile(seq);
    // A formatting error can only come from our own Display code; the
    // partial text is still shown.
    let _ = owner.show(&mut out);
    0
}
