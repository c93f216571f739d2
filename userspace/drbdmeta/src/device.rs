//! The meta data device: opening it the way drbdmeta does (O_DIRECT so we
//! never see stale page cache after the kernel wrote metadata, O_EXCL for
//! internal and flexible metadata so a typo cannot hit a device in use),
//! aligned reads and writes, and a guard that keeps writes inside the
//! metadata area.

use crate::{confirm, fail, Options};
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};

/// All metadata I/O is done in (multiples of) this unit and alignment.
const ALIGN: u64 = 4096;

pub struct MetaDevice {
    pub path: String,
    file: File,
    /// Size in bytes.
    pub size: u64,
    direct: bool,
    /// Byte range writes must stay in, once the layout is known.
    guard: Option<(u64, u64)>,
    dry_run: bool,
    ignore_sanity_checks: bool,
}

/// A zeroed buffer of `len` bytes at a 4 KiB-aligned address, as O_DIRECT
/// wants it. (Safe code: over-allocate and start at the aligned offset.)
struct Aligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let storage = vec![0u8; len + ALIGN as usize];
        let misalign = storage.as_ptr() as usize % ALIGN as usize;
        let start = (ALIGN as usize - misalign) % ALIGN as usize;
        Self {
            storage,
            start,
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

impl MetaDevice {
    /// Opens `path` read-write. `exclusive` asks for O_EXCL (only
    /// meaningful for block devices); `apply_al` refuses to retry without
    /// it unless forced, as drbdmeta does.
    pub fn open(path: &str, exclusive: bool, apply_al: bool, opts: &Options) -> Result<Self> {
        let mut excl = exclusive;
        let mut direct = true;
        let file = loop {
            let mut flags = 0;
            if direct {
                flags |= libc::O_DIRECT;
            }
            if excl {
                flags |= libc::O_EXCL;
            }
            match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(path)
            {
                Ok(f) => break f,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && excl => {
                    eprintln!("open({path}) failed: {e}");
                    if (!opts.force && apply_al)
                        || !confirm(opts.force, "Exclusive open failed. Do it anyways?")
                    {
                        println!("Operation canceled.");
                        fail(20, "");
                    }
                    excl = false;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && direct => {
                    eprintln!("could not open with O_DIRECT, retrying without");
                    direct = false;
                }
                Err(e) => fail(20, &format!("open({path}) failed: {e}")),
            }
        };
        let meta = file
            .metadata()
            .with_context(|| format!("fstat({path}) failed"))?;
        let block = meta.file_type().is_block_device();
        if !block && !opts.force {
            fail(20, &format!("'{path}' is not a block device!"));
        }
        let size = if block {
            (&file)
                .seek(SeekFrom::End(0))
                .with_context(|| format!("cannot determine the size of {path}"))?
        } else {
            meta.len()
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            direct,
            guard: None,
            dry_run: opts.dry_run,
            ignore_sanity_checks: opts.ignore_sanity_checks,
        })
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.size >> 9
    }

    /// Restricts writes to `[start, start + len)` bytes.
    pub fn set_guard(&mut self, start: u64, len: u64) {
        self.guard = Some((start, start + len));
    }

    /// Reads exactly `len` bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let first = offset / ALIGN * ALIGN;
        let end = (offset + len as u64).div_ceil(ALIGN) * ALIGN;
        let mut buf = Aligned::new((end - first) as usize);
        let n = read_full(&self.file, buf.bytes(), first)?;
        let skip = (offset - first) as usize;
        if n < skip + len {
            fail(
                10,
                &format!(
                    "confused: expected to read {len} bytes at {offset}, actually read {}",
                    n.saturating_sub(skip)
                ),
            );
        }
        Ok(buf.bytes()[skip..skip + len].to_vec())
    }

    /// Writes `data` at `offset`, keeping unaligned edges intact.
    pub fn write_at(&self, offset: u64, data: &[u8], tag: &str) -> Result<()> {
        let end = offset + data.len() as u64;
        if let Some((lo, hi)) = self.guard {
            if offset < lo || end > hi {
                eprintln!(
                    "{tag}: offset+count ({offset}+{}) not in meta data area range [{lo}; {hi}], aborted",
                    data.len()
                );
                if self.ignore_sanity_checks {
                    eprintln!("Ignored due to --ignore-sanity-checks");
                } else {
                    fail(
                        10,
                        "If you want to force this, tell me to --ignore-sanity-checks",
                    );
                }
            }
        }
        if self.dry_run {
            eprintln!(
                " {tag:<26}: pwrite(..., {:6}, {offset:12}) SKIPPED DUE TO DRY-RUN",
                data.len()
            );
            return Ok(());
        }
        let first = offset / ALIGN * ALIGN;
        let last = end.div_ceil(ALIGN) * ALIGN;
        let mut buf = Aligned::new((last - first) as usize);
        if first != offset || last != end {
            // Read-modify-write the partial 4 KiB blocks at the edges.
            let n = read_full(&self.file, buf.bytes(), first)?;
            buf.bytes()[n..].fill(0);
        }
        let skip = (offset - first) as usize;
        buf.bytes()[skip..skip + data.len()].copy_from_slice(data);
        // A regular file may end inside the last block: do not grow it.
        let limit = if self.direct {
            last
        } else {
            last.min(self.size.max(end))
        };
        let out = &mut buf.bytes()[..(limit - first) as usize];
        self.file.write_all_at(out, first).with_context(|| {
            format!(
                "pwrite({}, {}, {first}) in {tag} failed",
                self.path,
                out.len()
            )
        })
    }

    /// Flushes to stable storage (fsync; errors ignored like drbdmeta,
    /// some devices refuse it).
    pub fn sync(&self) {
        let _ = self.file.sync_all();
    }
}

fn read_full(file: &File, buf: &mut [u8], offset: u64) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(e).with_context(|| format!("pread({}, {offset}) failed", buf.len()))
            }
        }
    }
    Ok(done)
}
