//! Running a userspace program from the kernel (`call_usermodehelper`),
//! as DRBD runs its helper (drbdadm) on events such as a split brain.

use kernel::ffi::{c_char, c_uint};

use super::shim;

/// Room for the helper path (the module parameter's size).
const PATH_SIZE: usize = 80;

/// At most this many arguments and environment entries each.
const MAX_STRINGS: usize = 8;

/// The `usermode_helper` module parameter's value at one moment.
pub(crate) struct HelperPath([u8; PATH_SIZE]);

impl HelperPath {
    /// Reads the parameter (under the module's parameter lock).
    pub(crate) fn get() -> Self {
        let mut path = [0u8; PATH_SIZE];
        // SAFETY: `path` is writable for its whole length, which is passed;
        // the shim NUL-terminates within it.
        unsafe { shim::rdrbd_usermode_helper_path(path.as_mut_ptr().cast::<c_char>(), PATH_SIZE as c_uint) };
        // `echo path > .../usermode_helper` stores the newline too.
        let len = path.iter().position(|&b| b == 0).unwrap_or(PATH_SIZE);
        for b in path.iter_mut().take(len).rev() {
            if !b.is_ascii_whitespace() {
                break;
            }
            *b = 0;
        }
        Self(path)
    }

    /// The path without its NUL ("?" if it is not UTF-8).
    pub(crate) fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(PATH_SIZE - 1);
        self.0.get(..len).and_then(|p| core::str::from_utf8(p).ok()).unwrap_or("?")
    }
}

/// Runs the program `path` with `args` after its own name and the
/// environment `env` (each entry "NAME=value"), and waits for it to exit
/// (UMH_WAIT_PROC). Each string must end in NUL. Returns the wait status
/// (exit code << 8) or a negative errno when it could not run.
pub(crate) fn call_usermode_helper(path: &HelperPath, args: &[&[u8]], env: &[&[u8]]) -> i32 {
    let path_ptr = path.0.as_ptr().cast_mut().cast::<c_char>();
    if path.0[0] == 0 || path.0[PATH_SIZE - 1] != 0 {
        return -(kernel::bindings::ENOENT as i32);
    }
    if args.len() >= MAX_STRINGS || env.len() >= MAX_STRINGS || Iterator::chain(args.iter(), env).any(|s| s.last() != Some(&0)) {
        return -(kernel::bindings::EINVAL as i32);
    }
    let mut argv = [core::ptr::null_mut::<c_char>(); MAX_STRINGS + 1];
    let mut envp = [core::ptr::null_mut::<c_char>(); MAX_STRINGS + 1];
    argv[0] = path_ptr;
    for (slot, arg) in argv.iter_mut().skip(1).zip(args) {
        *slot = arg.as_ptr().cast_mut().cast::<c_char>();
    }
    for (slot, var) in envp.iter_mut().zip(env) {
        *slot = var.as_ptr().cast_mut().cast::<c_char>();
    }
    // SAFETY: `path` and every string in `argv`/`envp` are NUL-terminated
    // and outlive the call, which waits for the program to exit
    // (UMH_WAIT_PROC); both arrays end in a null pointer (at most
    // MAX_STRINGS entries are filled). The kernel only reads the strings.
    unsafe { shim::rdrbd_call_usermode_helper(path_ptr, argv.as_mut_ptr(), envp.as_mut_ptr()) }
}
