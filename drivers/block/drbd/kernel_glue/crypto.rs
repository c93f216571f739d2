//! Hashes of the kernel crypto API (`crypto_shash`): keyed "hmac(alg)"
//! for `cram-hmac-alg` peer authentication, plain digests for the
//! `verify-alg` of online verify, the `csums-alg` of a resync and the
//! `data-integrity-alg` of replicated data (over a bio's or a block's
//! pages: [`Digest::of_pages`], used by the block glue).

use core::ptr::NonNull;

use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;

use super::shim;

/// The largest digest rdrbd accepts from the kernel (SHA-512's).
pub(crate) const HMAC_MAX_DIGEST: usize = 64;

/// A `crypto_shash` transform, keyed or not, with its digest size.
///
/// # Invariants
/// `tfm` came from `rdrbd_hmac_alloc` or `rdrbd_digest_alloc` and is freed
/// only in `drop`; `digest_size` is its digest size, 1 to
/// [`HMAC_MAX_DIGEST`] bytes.
struct Shash {
    tfm: NonNull<shim::crypto_shash>,
    digest_size: usize,
}

// SAFETY: a shash transform (keyed, if at all, before it is shared) is only
// read by digest calls, each with its own descriptor; it may move between
// threads.
unsafe impl Send for Shash {}
// SAFETY: as above; `digest` takes `&self` and keeps no state in `tfm`.
unsafe impl Sync for Shash {}

impl Shash {
    /// Takes over `tfm` (a transform or an ERR_PTR from the shim); `key`,
    /// if any, is set before the transform is used.
    fn new(tfm: *mut shim::crypto_shash, key: Option<&[u8]>) -> Result<Self> {
        let tfm = NonNull::new(from_err_ptr(tfm)?).ok_or(ENOENT)?;
        // From here on, `Drop` frees the transform.
        let mut this = Self { tfm, digest_size: 0 };
        if let Some(key) = key {
            let len = u32::try_from(key.len()).map_err(|_| EINVAL)?;
            // SAFETY: `tfm` is live; `key` is valid for `len` bytes.
            to_result(unsafe { shim::rdrbd_hmac_setkey(this.tfm.as_ptr(), key.as_ptr(), len) })?;
        }
        // SAFETY: `tfm` is live.
        let size = unsafe { shim::rdrbd_hmac_digestsize(this.tfm.as_ptr()) } as usize;
        if size == 0 || size > HMAC_MAX_DIGEST {
            return Err(EINVAL);
        }
        // INVARIANT: the size was just checked.
        this.digest_size = size;
        Ok(this)
    }

    /// The digest of `data` into the first `digest_size` bytes of `out`.
    fn digest(&self, data: &[u8], out: &mut [u8; HMAC_MAX_DIGEST]) -> Result<usize> {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: `tfm` is live (and keyed if it needs to be); `data` is
        // valid for `len` bytes; `out` has room for `digest_size`.
        to_result(unsafe { shim::rdrbd_hmac_digest(self.tfm.as_ptr(), data.as_ptr(), len, out.as_mut_ptr()) })?;
        Ok(self.digest_size)
    }
}

impl Drop for Shash {
    fn drop(&mut self) {
        // SAFETY: `tfm` came from the shim's allocation and is freed once, here.
        unsafe { shim::rdrbd_hmac_free(self.tfm.as_ptr()) };
    }
}

/// An HMAC transform with its key set (`cram-hmac-alg`).
pub(crate) struct Hmac(Shash);

impl Hmac {
    /// "hmac(`alg`)" keyed with `key`; `ENOENT` if the kernel lacks `alg`.
    pub(crate) fn new(alg: &CStr, key: &[u8]) -> Result<Self> {
        // SAFETY: `alg` is NUL-terminated; the shim returns a transform or an ERR_PTR.
        Shash::new(unsafe { shim::rdrbd_hmac_alloc(alg.as_char_ptr()) }, Some(key)).map(Self)
    }

    /// Bytes of a digest.
    pub(crate) fn digest_size(&self) -> usize {
        self.0.digest_size
    }

    /// The HMAC of `data` into the first [`Self::digest_size`] bytes of `out`.
    pub(crate) fn digest(&self, data: &[u8], out: &mut [u8; HMAC_MAX_DIGEST]) -> Result<usize> {
        self.0.digest(data, out)
    }
}

/// An unkeyed digest transform (`crypto_shash` "crc32c", "sha256"): the
/// `verify-alg` of online verify, the `csums-alg` of a resync.
pub(crate) struct Digest(Shash);

impl Digest {
    /// The digest `alg`; `ENOENT` if the kernel lacks it, `EINVAL` if its
    /// digest is larger than [`HMAC_MAX_DIGEST`].
    pub(crate) fn new(alg: &CStr) -> Result<Self> {
        // SAFETY: `alg` is NUL-terminated; the shim returns a transform or an ERR_PTR.
        Shash::new(unsafe { shim::rdrbd_digest_alloc(alg.as_char_ptr()) }, None).map(Self)
    }

    /// Bytes of a digest.
    pub(crate) fn size(&self) -> usize {
        self.0.digest_size
    }

    /// The digest of `data`.
    pub(crate) fn digest(&self, data: &[u8]) -> Result<DigestValue> {
        let mut value = DigestValue { bytes: [0u8; HMAC_MAX_DIGEST], len: 0 };
        value.len = self.0.digest(data, &mut value.bytes)?;
        Ok(value)
    }

    /// The digest `compute` writes: it is given the live transform and a
    /// buffer of [`HMAC_MAX_DIGEST`] bytes and returns 0 or a negative
    /// errno (a shim call digesting pages).
    pub(super) fn of_pages(&self, compute: impl FnOnce(*mut shim::crypto_shash, *mut u8) -> i32) -> Result<DigestValue> {
        let mut value = DigestValue { bytes: [0u8; HMAC_MAX_DIGEST], len: self.0.digest_size };
        to_result(compute(self.0.tfm.as_ptr(), value.bytes.as_mut_ptr()))?;
        Ok(value)
    }
}

/// A computed digest.
#[derive(Clone, Copy)]
pub(crate) struct DigestValue {
    bytes: [u8; HMAC_MAX_DIGEST],
    len: usize,
}

impl DigestValue {
    /// Its bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}
