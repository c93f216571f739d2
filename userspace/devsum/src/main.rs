//! devsum: the checksum of a block device's (or file's) content, for the
//! guest tests' "same data" and "nothing changed" checks.
//!
//! Why not `dd iflag=direct | md5sum`: on the debug guest kernel under
//! QEMU TCG that pipeline hashes about 27 MB/s (two processes, a pipe, and
//! MD5 in emulated user code), and the tests hash several GiB. devsum
//! reads with O_DIRECT into one aligned 4 MiB buffer and hashes with
//! XXH3-128, about 105 MB/s there: the reads dominate. XXH3 is not a
//! cryptographic hash; the tests compare replicas, they do not defend
//! against an adversary choosing the data.
//!
//! Block devices are read with O_DIRECT because each block device has its
//! own page cache: after writes through /dev/drbd0 a buffered read of the
//! backing disk may return stale pages. Regular files are read buffered
//! (tmpfs refuses O_DIRECT).
//!
//! Output: 32 hex digits and a newline. Exit status 1 on a read error or a
//! range beyond the end (nothing printed), 2 on a usage error.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use xxhash_rust::xxh3::Xxh3;

/// Bytes read at a time.
const CHUNK: usize = 4 << 20;
/// O_DIRECT needs buffer, offset and length aligned to the logical block
/// size; 4096 covers every device the tests use.
const ALIGN: usize = 4096;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Block device or file.
    path: PathBuf,
    /// Start at this byte (a multiple of 512 for a block device).
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Hash this many bytes (default: to the end).
    #[arg(long)]
    length: Option<u64>,
}

fn open(path: &Path) -> io::Result<File> {
    let is_block = std::fs::metadata(path)?.file_type().is_block_device();
    let mut options = OpenOptions::new();
    options.read(true);
    if is_block {
        options.custom_flags(libc::O_DIRECT);
    }
    options.open(path)
}

/// A `len`-byte slice of `storage` that starts at an `ALIGN`ed address.
fn aligned(storage: &mut [u8], len: usize) -> Option<&mut [u8]> {
    let misalignment = storage.as_ptr() as usize % ALIGN;
    let start = if misalignment == 0 { 0 } else { ALIGN - misalignment };
    storage.get_mut(start..start.checked_add(len)?)
}

/// Hashes `length` bytes (to the end when `None`) from `offset`.
fn checksum(file: &File, offset: u64, length: Option<u64>) -> io::Result<u128> {
    let mut storage = vec![0u8; CHUNK + ALIGN];
    let buf = aligned(&mut storage, CHUNK).ok_or_else(|| io::Error::other("buffer alignment"))?;
    let mut hasher = Xxh3::new();
    let mut pos = offset;
    let end = length.map(|n| offset.saturating_add(n));
    loop {
        let want = match end {
            Some(end) if pos >= end => break,
            Some(end) => usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK),
            None => CHUNK,
        };
        // O_DIRECT reads whole sectors: round up, hash only what was asked.
        let read_len = want.div_ceil(512).saturating_mul(512).min(CHUNK);
        let n = file.read_at(&mut buf[..read_len], pos)?;
        if n == 0 {
            if end.is_some() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range beyond the end"));
            }
            break;
        }
        let take = n.min(want);
        hasher.update(&buf[..take]);
        pos = pos.saturating_add(take as u64);
    }
    Ok(hasher.digest128())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = open(&args.path).and_then(|file| checksum(&file, args.offset, args.length));
    match result {
        Ok(sum) => {
            println!("{sum:032x}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("devsum: {}: {e}", args.path.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> (tempfile_path::TempPath, File) {
        let path = tempfile_path::TempPath::new();
        let mut f = File::create(&path.0).unwrap();
        f.write_all(data).unwrap();
        let f = File::open(&path.0).unwrap();
        (path, f)
    }

    /// A file in the target directory, removed on drop (no extra crate).
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        pub struct TempPath(pub PathBuf);
        impl TempPath {
            pub fn new() -> Self {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                Self(std::env::temp_dir().join(format!("devsum-test-{}-{n}", std::process::id())))
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn whole_file_matches_one_shot_xxh3() {
        let d = data(CHUNK * 2 + 12345);
        let (_p, f) = file_with(&d);
        assert_eq!(checksum(&f, 0, None).unwrap(), xxhash_rust::xxh3::xxh3_128(&d));
    }

    #[test]
    fn range_hashes_only_the_range() {
        let d = data(CHUNK + 3 * 4096);
        let (_p, f) = file_with(&d);
        let (off, len) = (4096usize, CHUNK + 1000);
        assert_eq!(
            checksum(&f, off as u64, Some(len as u64)).unwrap(),
            xxhash_rust::xxh3::xxh3_128(&d[off..off + len])
        );
        assert_eq!(checksum(&f, 0, Some(0)).unwrap(), xxhash_rust::xxh3::xxh3_128(&[]));
    }

    #[test]
    fn one_changed_byte_changes_the_sum() {
        let mut d = data(3 * 4096);
        let (_p, f) = file_with(&d);
        let before = checksum(&f, 0, None).unwrap();
        d[5000] ^= 1;
        let (_q, g) = file_with(&d);
        assert_ne!(before, checksum(&g, 0, None).unwrap());
    }

    #[test]
    fn range_beyond_the_end_is_an_error() {
        let (_p, f) = file_with(&data(8192));
        assert!(checksum(&f, 4096, Some(8192)).is_err());
    }

    #[test]
    fn aligned_slice_is_aligned_and_long_enough() {
        let mut storage = vec![0u8; 100 + ALIGN];
        let s = aligned(&mut storage, 100).unwrap();
        assert_eq!(s.as_ptr() as usize % ALIGN, 0);
        assert_eq!(s.len(), 100);
    }
}
