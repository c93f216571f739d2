//! Hashes of the kernel crypto API (`crypto_shash`): keyed "hmac(alg)"
//! for `cram-hmac-alg` peer authentication, plain digests for the
//! `verify-alg` of online verify.

use core::ptr::NonNull;

use kernel::error::{from_err_ptr, to_result};
use kernel::prelude::*;

use super::shim;

/// The largest digest rdrbd accepts from the kernel (SHA-512's).
pub(crate) const HMAC_MAX_DIGEST: usize = 64;

/// An HMAC transform with its key set.
///
/// # Invariants
/// `tfm` came from `rdrbd_hmac_alloc`, has its key set, and is freed only
/// in `drop`; `digest_size` is its digest size, at most [`HMAC_MAX_DIGEST`].
pub(crate) struct Hmac {
    tfm: NonNull<shim::crypto_shash>,
    digest_size: usize,
}

// SAFETY: a shash transform with its key set is only read by digest
// calls, each with its own descriptor; it may move between threads.
unsafe impl Send for Hmac {}
// SAFETY: as above; `digest` takes `&self` and keeps no state in `tfm`.
unsafe impl Sync for Hmac {}

impl Hmac {
    /// "hmac(`alg`)" keyed with `key`; `ENOENT` if the kernel lacks `alg`.
    pub(crate) fn new(alg: &CStr, key: &[u8]) -> Result<Self> {
        // SAFETY: `alg` is NUL-terminated; the shim returns a transform or an ERR_PTR.
        let tfm = from_err_ptr(unsafe { shim::rdrbd_hmac_alloc(alg.as_char_ptr()) })?;
        let tfm = NonNull::new(tfm).ok_or(ENOENT)?;
        // From here on, `Drop` frees the transform.
        let mut this = Self { tfm, digest_size: 0 };
        let len = u32::try_from(key.len()).map_err(|_| EINVAL)?;
        // SAFETY: `tfm` is live; `key` is valid for `len` bytes.
        to_result(unsafe { shim::rdrbd_hmac_setkey(this.tfm.as_ptr(), key.as_ptr(), len) })?;
        // SAFETY: `tfm` is live.
        let size = unsafe { shim::rdrbd_hmac_digestsize(this.tfm.as_ptr()) } as usize;
        if size == 0 || size > HMAC_MAX_DIGEST {
            return Err(EINVAL);
        }
        this.digest_size = size;
        Ok(this)
    }

    /// Bytes of a digest.
    pub(crate) fn digest_size(&self) -> usize {
        self.digest_size
    }

    /// The HMAC of `data` into the first [`Self::digest_size`] bytes of `out`.
    pub(crate) fn digest(&self, data: &[u8], out: &mut [u8; HMAC_MAX_DIGEST]) -> Result<usize> {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        // SAFETY: `tfm` is live and keyed; `data` is valid for `len` bytes;
        // `out` has room for the digest size checked in `new`.
        to_result(unsafe { shim::rdrbd_hmac_digest(self.tfm.as_ptr(), data.as_ptr(), len, out.as_mut_ptr()) })?;
        Ok(self.digest_size)
    }
}

impl Drop for Hmac {
    fn drop(&mut self) {
        // SAFETY: `tfm` came from `rdrbd_hmac_alloc` and is freed once, here.
        unsafe { shim::rdrbd_hmac_free(self.tfm.as_ptr()) };
    }
}

/// An unkeyed digest transform (`crypto_shash` "crc32c", "sha256"): the
/// `verify-alg` of online verify.
///
/// # Invariants
/// `tfm` came from `rdrbd_digest_alloc` and is freed only in `drop`;
/// `digest_size` is its digest size, at most [`HMAC_MAX_DIGEST`].
pub(crate) struct Digest {
    tfm: NonNull<shim::crypto_shash>,
    digest_size: usize,
}

// SAFETY: an unkeyed shash transform is only read by digest calls, each
// with its own descriptor; it may move between threads.
unsafe impl Send for Digest {}
// SAFETY: as above; `digest` takes `&self` and keeps no state in `tfm`.
unsafe impl Sync for Digest {}

impl Digest {
    /// The digest `alg`; `ENOENT` if the kernel lacks it, `EINVAL` if its
    /// digest is larger than [`HMAC_MAX_DIGEST`].
    pub(crate) fn new(alg: &CStr) -> Result<Self> {
        // SAFETY: `alg` is NUL-terminated; the shim returns a transform or an ERR_PTR.
        let tfm = from_err_ptr(unsafe { shim::rdrbd_digest_alloc(alg.as_char_ptr()) })?;
        let tfm = NonNull::new(tfm).ok_or(ENOENT)?;
        // From here on, `Drop` frees the transform.
        let mut this = Self { tfm, digest_size: 0 };
        // SAFETY: `tfm` is live.
        let size = unsafe { shim::rdrbd_hmac_digestsize(this.tfm.as_ptr()) } as usize;
        if size == 0 || size > HMAC_MAX_DIGEST {
            return Err(EINVAL);
        }
        this.digest_size = size;
        Ok(this)
    }

    /// Bytes of a digest.
    pub(crate) fn size(&self) -> usize {
        self.digest_size
    }

    /// The digest of `data`: its first `n` bytes of the returned buffer.
    pub(crate) fn digest(&self, data: &[u8]) -> Result<([u8; HMAC_MAX_DIGEST], usize)> {
        let len = u32::try_from(data.len()).map_err(|_| EINVAL)?;
        let mut out = [0u8; HMAC_MAX_DIGEST];
        // SAFETY: `tfm` is live; `data` is valid for `len` bytes; `out`
        // has room for the digest size checked in `new`.
        to_result(unsafe { shim::rdrbd_hmac_digest(self.tfm.as_ptr(), data.as_ptr(), len, out.as_mut_ptr()) })?;
        Ok((out, self.digest_size))
    }
}

impl Drop for Digest {
    fn drop(&mut self) {
        // SAFETY: `tfm` came from `rdrbd_digest_alloc` and is freed once, here.
        unsafe { shim::rdrbd_hmac_free(self.tfm.as_ptr()) };
    }
}
