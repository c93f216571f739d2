//! The drbdmeta commands for v08 metadata. Each returns the exit code;
//! fatal conditions end the program through `fail` with drbdmeta's code.

use crate::device::MetaDevice;
use crate::existing_data::{self, Claim, Verdict};
use crate::{confirm, dump, fail, Options};
use anyhow::{Context, Result};
use drbd_include::al::{self, AlGeometry, AL_EXTENTS_MAX, AL_FREE_EXTENT, AL_TRANSACTION_BYTES};
use drbd_include::bitmap::{Bitmap, BM_BYTES_PER_AL_EXTENT};
use drbd_include::md::{
    bitmap_bytes, Layout, MetaIndex, Superblock, DRBD_MAGIC, DRBD_MD_MAGIC_08, DRBD_MD_MAGIC_09,
    DRBD_MD_MAGIC_84_UNCLEAN, MDF_AL_CLEAN, MDF_CONNECTED_IND, MDF_CONSISTENT, MDF_CRASHED_PRIMARY,
    MDF_FULL_SYNC, MDF_PEER_OUT_DATED, MDF_PRIMARY_IND, MDF_WAS_UP_TO_DATE, MD_128MB_SECT,
    MD_SUPERBLOCK_BYTES,
};
use std::io::Write;

/// Where `open` found metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Valid,
    None,
    /// Internal metadata at the place it had before the backing device grew.
    AtLastKnownLocation,
}

/// drbdmeta's "last known backing device" record (`/var/lib/drbd/
/// drbd-minor-N.lkbd`), used to find internal metadata after the backing
/// device was resized offline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LastKnown {
    size: u64,
    name: String,
    uuid: u64,
}

fn lk_path(minor: u32) -> String {
    // Tests point this elsewhere; drbd-utils' DRBD_LIB_DIR is /var/lib/drbd.
    let dir = std::env::var("RDRBD_LIB_DIR").unwrap_or_else(|_| "/var/lib/drbd".into());
    format!("{dir}/drbd-minor-{minor}.lkbd")
}

fn lk_load(minor: u32) -> Option<LastKnown> {
    let text = std::fs::read_to_string(lk_path(minor)).ok()?;
    let mut lines = text.lines();
    let mut first = lines.next()?.split_whitespace();
    let size = first.next()?.parse().ok()?;
    let name = first.next().unwrap_or_default().to_owned();
    let uuid = lines
        .next()
        .and_then(|l| l.strip_prefix("uuid:"))
        .and_then(|u| u64::from_str_radix(u.trim(), 16).ok())
        .unwrap_or(0);
    Some(LastKnown { size, name, uuid })
}

fn lk_save(minor: u32, lk: &LastKnown) {
    let mut text = format!("{}\t{}\n", lk.size, lk.name);
    if lk.uuid != 0 {
        text += &format!("uuid:\t{:016X}\n", lk.uuid);
    }
    let path = lk_path(minor);
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("lk_bdev_save({path}) failed: {e}");
    }
}

fn lk_delete(minor: u32) {
    let path = lk_path(minor);
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("lk_bdev_delete({path}) failed: {e}");
        }
    }
}

/// drbd-utils' `ppsize`: kB to a short human-readable size.
fn ppsize(mut kb: u64) -> String {
    let units = ['K', 'M', 'G', 'T', 'P', 'E'];
    let mut base = 0;
    while kb >= 10000 && base < units.len() - 1 {
        kb = (kb >> 10) + ((kb >> 9) & 1);
        base += 1;
    }
    format!("{} {}B", kb, units[base])
}

/// Byte offset of the superblock for a meta device of `size` bytes.
fn md_byte_offset(index: MetaIndex, size: u64) -> u64 {
    match index {
        MetaIndex::Internal | MetaIndex::FlexInternal => size.saturating_sub(4096) & !4095,
        MetaIndex::FlexExternal => 0,
        MetaIndex::Indexed(n) => u64::from(n) * MD_128MB_SECT * 512,
    }
}

/// The superblock in `block`, if it is valid v08 metadata (clean or not)
/// laid out as `index` on a meta device of `sectors`.
fn valid_md(
    block: &[u8; MD_SUPERBLOCK_BYTES],
    index: MetaIndex,
    sectors: u64,
) -> Option<Superblock> {
    let sb = Superblock::decode(block).ok()?;
    let layout = Layout::compute(index, sectors, sectors, sb.al_geometry().ok()?).ok()?;
    sb.check_layout(&layout).ok()?;
    Some(sb)
}

struct Ctx<'a> {
    opts: &'a Options,
    minor: Option<u32>,
    index: MetaIndex,
    dev: MetaDevice,
    /// Byte offsets on the meta device.
    md_offset: u64,
    al_offset: u64,
    bm_offset: u64,
    sb: Superblock,
    /// Usable data sectors the on-disk bitmap can describe.
    max_usable_sect: u64,
    /// Bytes of bitmap for the last agreed size.
    bm_bytes: u64,
    lk: Option<LastKnown>,
    update_lk: bool,
}

impl<'a> Ctx<'a> {
    fn open(
        opts: &'a Options,
        minor: Option<u32>,
        path: &str,
        index: MetaIndex,
        apply_al: bool,
    ) -> Result<Self> {
        let exclusive = !matches!(index, MetaIndex::Indexed(_));
        let dev = MetaDevice::open(path, exclusive, apply_al, opts)?;
        // check_for_existing_data reads this much from the start.
        if dev.size < existing_data::SCAN_BYTES as u64 {
            fail(
                10,
                &format!("{path} is only {} bytes. That's not enough.", dev.size),
            );
        }
        let md_offset = md_byte_offset(index, dev.size);
        if md_offset > dev.size - 4096 {
            fail(
                10,
                &format!(
                    "Device too small: expecting meta data block at\nbyte offset {md_offset}, but {path} is only {} bytes.",
                    dev.size
                ),
            );
        }
        Ok(Self {
            opts,
            minor,
            index,
            dev,
            md_offset,
            al_offset: 0,
            bm_offset: 0,
            sb: Superblock::default(),
            max_usable_sect: 0,
            bm_bytes: 0,
            lk: None,
            update_lk: false,
        })
    }

    fn read_superblock(&self, offset: u64) -> Result<[u8; MD_SUPERBLOCK_BYTES]> {
        let bytes = self.dev.read_at(offset, MD_SUPERBLOCK_BYTES)?;
        let mut block = [0u8; MD_SUPERBLOCK_BYTES];
        block.copy_from_slice(&bytes);
        Ok(block)
    }

    /// Takes `sb` at `md_offset` as the current metadata: absolute offsets,
    /// usable size, la-size clipping (drbdmeta's open and
    /// `clip_effective_size_and_bm_bytes`).
    fn adopt(&mut self, sb: Superblock, md_offset: u64) {
        self.sb = sb;
        self.md_offset = md_offset;
        self.al_offset = md_offset.saturating_add_signed(i64::from(sb.al_offset) * 512);
        self.bm_offset = md_offset.saturating_add_signed(i64::from(sb.bm_offset) * 512);
        self.max_usable_sect = if self.index.is_internal() {
            md_offset.min(self.al_offset).min(self.bm_offset) >> 9
        } else {
            sb.bitmap_sectors() * 32768
        };
        if self.sb.la_size_sect > self.max_usable_sect {
            println!(
                "# la-size-sect was too big ({}), truncated ({})!",
                self.sb.la_size_sect, self.max_usable_sect
            );
            self.sb.la_size_sect = self.max_usable_sect;
        }
        self.bm_bytes = bitmap_bytes(self.sb.la_size_sect);
        let first = md_offset.min(self.al_offset).min(self.bm_offset);
        self.dev.set_guard(first, u64::from(sb.md_size_sect) * 512);
    }

    /// Finds the metadata (drbdmeta's `v08_md_open`).
    fn find(&mut self) -> Result<Found> {
        let block = self.read_superblock(self.md_offset)?;
        if let Some(sb) = valid_md(&block, self.index, self.dev.sectors()) {
            self.adopt(sb, self.md_offset);
            return Ok(Found::Valid);
        }
        // Internal metadata may still sit where it was before the backing
        // device was grown offline.
        let (Some(minor), MetaIndex::FlexInternal) = (self.minor, self.index) else {
            return Ok(Found::None);
        };
        let Some(lk) = lk_load(minor) else {
            return Ok(Found::None);
        };
        if lk.size == self.dev.size || lk.size < 4096 {
            return Ok(Found::None);
        }
        let old_offset = md_byte_offset(self.index, lk.size);
        let mut found = None;
        if old_offset < self.dev.size - 4096 {
            found = valid_md(&self.read_superblock(old_offset)?, self.index, lk.size >> 9);
        }
        if let Some(sb) = found {
            if lk.uuid != 0 && sb.device_uuid != lk.uuid {
                eprintln!(
                    "Last known and found uuid differ!?\n{:016X} != {:016X}",
                    lk.uuid, sb.device_uuid
                );
                if !self.opts.force {
                    eprintln!("You may --force me to ignore that.");
                    found = None;
                } else {
                    eprintln!("You --force'ed me to ignore that.");
                }
            }
        }
        let Some(sb) = found else {
            return Ok(Found::None);
        };
        self.sb = sb;
        self.lk = Some(lk);
        Ok(Found::AtLastKnownLocation)
    }

    /// Writes the superblock (drbdmeta's `md_cpu_to_disk`).
    fn write_superblock(&mut self) -> Result<()> {
        let mut block = [0u8; MD_SUPERBLOCK_BYTES];
        self.sb.encode(&mut block);
        self.dev
            .write_at(self.md_offset, &block, "md_cpu_to_disk")?;
        self.update_lk = true;
        Ok(())
    }

    /// Syncs and updates the last-known record (drbdmeta's `v08_md_close`).
    fn close(&self) {
        self.dev.sync();
        if let (true, false, Some(minor)) = (self.update_lk, self.opts.dry_run, self.minor) {
            if self.index == MetaIndex::FlexInternal {
                let lk = LastKnown {
                    size: self.dev.size,
                    name: self.dev.path.clone(),
                    uuid: self.sb.device_uuid,
                };
                lk_save(minor, &lk);
            } else {
                lk_delete(minor);
            }
        }
    }

    fn write_initialized_al(&self, al: &AlGeometry) -> Result<()> {
        let mut block = [0u8; AL_TRANSACTION_BYTES];
        al::encode_initialized(&mut block);
        let ring: Vec<u8> = block
            .iter()
            .copied()
            .cycle()
            .take(al.size_bytes() as usize)
            .collect();
        self.dev
            .write_at(self.al_offset, &ring, "md_initialize_common:AL")
    }

    /// drbdmeta's `check_for_existing_data`: refuse or ask before creating
    /// metadata over something that looks used. Exits when refused.
    fn check_for_existing_data(&self, max_usable_sect: u64) -> Result<()> {
        let head = self.dev.read_at(0, existing_data::SCAN_BYTES)?;
        let Some(found) = existing_data::scan(&head) else {
            return Ok(());
        };
        println!("md_offset {}", self.md_offset);
        println!("al_offset {}", self.al_offset);
        println!("bm_offset {}", self.bm_offset);
        println!("\nFound {}", found.what);
        let external = !self.index.is_internal();
        let usable_kb = max_usable_sect >> 1;
        let refuse = || -> ! {
            println!(
                "If you want me to do this, you need to zero out the first part\nof the device (destroy the content).\n\
                 You should be very sure that you mean it.\nOperation refused.\n"
            );
            fail(40, "")
        };
        match found.claim {
            Claim::Unknown => println!("\n ==> This might destroy existing data! <=="),
            _ if external => {
                println!("\nThis would corrupt existing data.");
                if self.opts.ignore_sanity_checks {
                    println!("\nIgnoring sanity check on user request.\n");
                    return Ok(());
                }
                refuse();
            }
            claim => {
                if let Claim::Bytes(bytes) = claim {
                    println!("{:12} kB data area apparently used", bytes.div_ceil(1024));
                }
                println!("{usable_kb:12} kB left usable by current configuration");
                if claim == Claim::RefuseUnknownSize {
                    println!("Could not determine the size of the actually used data area.\n");
                }
                if existing_data::verdict(&found, external, usable_kb) == Verdict::Refuse {
                    if matches!(claim, Claim::Bytes(_)) {
                        println!(
                            "\nDevice size would be truncated, which\nwould corrupt data and result in\n\
                             'access beyond end of device' errors.\nYou need to either\n   \
                             * use external meta data (recommended)\n   * shrink that filesystem first\n   \
                             * zero out the device (destroy the filesystem)\nOperation refused.\n"
                        );
                        fail(40, "");
                    }
                    println!(
                        "Device size would be truncated, which\nwould corrupt data and result in\n\
                         'access beyond end of device' errors."
                    );
                    if self.opts.ignore_sanity_checks {
                        println!("\nIgnoring sanity check on user request.\n");
                        return Ok(());
                    }
                    refuse();
                }
                println!(
                    "\nEven though it looks like this would place the new meta data into\n\
                     unused space, you still need to confirm, as this is only a guess."
                );
            }
        }
        if !confirm(self.opts.force, "Do you want to proceed?") {
            println!("Operation canceled.");
            fail(1, "");
        }
        Ok(())
    }

    /// The layout a fresh or restored superblock gets on this device.
    fn layout(&self, al: AlGeometry) -> Layout {
        let sectors = self.dev.sectors();
        Layout::compute(self.index, sectors, sectors, al).unwrap_or_else(|e| {
            fail(
                10,
                &format!(
                    "Cannot place meta data on {} ({} bytes): {e}",
                    self.dev.path, self.dev.size
                ),
            )
        })
    }

    /// Takes `layout` as the target of a create-md or restore-md.
    fn adopt_layout(&mut self, layout: &Layout, sb: Superblock) {
        let md_offset = layout.md_offset * 512;
        self.adopt(sb, md_offset);
        self.dev
            .set_guard(layout.area().0 * 512, layout.area().1 * 512);
    }
}

/// Runs `command`; returns the exit code.
pub fn run(
    opts: &Options,
    minor: Option<u32>,
    device: &str,
    index: MetaIndex,
    command: &str,
    args: &[String],
) -> Result<u8> {
    let takes_arg = matches!(command, "restore-md" | "verify-dump" | "set-gi");
    if args.len() > usize::from(takes_arg) {
        eprintln!("Ignoring additional arguments");
    }
    if command == "verify-dump" {
        return verify_dump(args);
    }
    let mut ctx = Ctx::open(opts, minor, device, index, command == "apply-al")?;
    let code = match command {
        "get-gi" | "show-gi" | "dstate" => show(&mut ctx, command)?,
        "dump-md" => dump_md(&mut ctx)?,
        "restore-md" => restore_md(&mut ctx, args.first())?,
        "apply-al" => apply_al(&mut ctx)?,
        "wipe-md" => wipe_md(&mut ctx)?,
        "set-gi" => set_gi(&mut ctx, args.first())?,
        "outdate" | "invalidate" => outdate_or_invalidate(&mut ctx, command)?,
        "check-resize" => check_resize(&mut ctx)?,
        "create-md" => create_md(&mut ctx)?,
        _ => fail(20, &format!("Unknown command '{command}'.")),
    };
    Ok(code)
}

/// The `get-gi` line: four UUIDs and seven flag bits.
fn gi_line(sb: &Superblock) -> String {
    let bit = |f: u32| u8::from(sb.flags & f != 0);
    format!(
        "{:016X}:{:016X}:{:016X}:{:016X}:{}:{}:{}:{}:{}:{}:{}",
        sb.uuid[0],
        sb.uuid[1],
        sb.uuid[2],
        sb.uuid[3],
        bit(MDF_CONSISTENT),
        bit(MDF_WAS_UP_TO_DATE),
        bit(MDF_PRIMARY_IND),
        bit(MDF_CONNECTED_IND),
        bit(MDF_FULL_SYNC),
        bit(MDF_PEER_OUT_DATED),
        bit(MDF_CRASHED_PRIMARY)
    )
}

const SHOW_GI_HEAD: &str = "
       +--<  Current data generation UUID  >-
       |               +--<  Bitmap's base data generation UUID  >-
       |               |                 +--<  younger history UUID  >-
       |               |                 |         +-<  older history  >-
       V               V                 V         V";

const SHOW_GI_TAIL: &str =
    "                                                                    ^ ^ ^ ^ ^ ^ ^
                                      -<  Data consistency flag  >--+ | | | | | |
                             -<  Data was/is currently up-to-date  >--+ | | | | |
                                  -<  Node was/is currently primary  >--+ | | | |
                                  -<  Node was/is currently connected  >--+ | | |
         -<  Node was in the progress of setting all bits in the bitmap  >--+ | |
                        -<  The peer's disk was out-dated or inconsistent  >--+ |
      -<  This node was a crashed primary, and has not seen its peer since   >--+
";

fn show(ctx: &mut Ctx<'_>, command: &str) -> Result<u8> {
    if ctx.find()? != Found::Valid {
        if command == "dstate" {
            eprintln!("No valid meta data found");
        }
        return Ok(1);
    }
    let sb = ctx.sb;
    match command {
        "get-gi" => println!("{}", gi_line(&sb)),
        "dstate" => println!("{}", sb.disk_state_name()),
        _ => {
            println!("{SHOW_GI_HEAD}\n{}\n{SHOW_GI_TAIL}", gi_line(&sb));
            let f = sb.flags;
            let disk = match (f & MDF_CONSISTENT != 0, f & MDF_WAS_UP_TO_DATE != 0) {
                (false, _) => "Inconsistent",
                (true, true) => "UpToDate",
                (true, false) => "Outdated",
            };
            println!(
                "flags:{} {}, {}, {}{}{}",
                if f & MDF_CRASHED_PRIMARY != 0 {
                    " crashed"
                } else {
                    ""
                },
                if f & MDF_PRIMARY_IND != 0 {
                    "Primary"
                } else {
                    "Secondary"
                },
                if f & MDF_CONNECTED_IND != 0 {
                    "Connected"
                } else {
                    "StandAlone"
                },
                disk,
                if f & MDF_FULL_SYNC != 0 {
                    ", need full sync"
                } else {
                    ""
                },
                if f & MDF_PEER_OUT_DATED != 0 {
                    ", peer Outdated"
                } else {
                    ""
                },
            );
            println!(
                "meta-data: {}",
                if f & MDF_AL_CLEAN != 0 {
                    "clean"
                } else {
                    "need apply-al"
                }
            );
            if sb.la_size_sect != 0 {
                println!(
                    "last agreed size: {} ({} sectors)",
                    ppsize(sb.la_size_sect >> 1),
                    sb.la_size_sect
                );
                println!("last agreed max bio size: {} Byte", sb.la_peer_max_bio_size);
            } else {
                println!("zero size device -- never seen peer yet?");
            }
        }
    }
    ctx.close();
    Ok(0)
}

/// "YYYY-MM-DD HH:MM:SS +0000 [epoch]" in UTC (the header is a comment).
fn dump_time() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 [{secs}]",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn dump_md(ctx: &mut Ctx<'_>) -> Result<u8> {
    let found = ctx.find()?;
    if found == Found::None {
        eprintln!("No valid meta data found");
        return Ok(1);
    }
    let clean = ctx.sb.magic != DRBD_MD_MAGIC_84_UNCLEAN && ctx.sb.flags & MDF_AL_CLEAN != 0;
    if !clean {
        eprintln!("Found meta data is \"unclean\", please apply-al first");
        if !ctx.opts.force {
            return Ok(1);
        }
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write!(
        out,
        "# DRBD meta data dump\n# {}\n# {}>",
        dump_time(),
        hostname.trim()
    )?;
    for arg in &ctx.opts.argv {
        write!(out, " {arg}")?;
    }
    write!(out, "\n#\n\nversion \"v08\";\n\n")?;
    if !clean {
        // Keeps restore-md from accepting the dump.
        write!(
            out,
            "This_is_an_unclean_meta_data_dump._Don't_trust_the_bitmap.\n\
             # You should \"apply-al\" first, if you plan to restore this.\n\n"
        )?;
    }
    writeln!(out, "# md_size_sect {}", ctx.sb.md_size_sect)?;
    if found == Found::AtLastKnownLocation {
        let lk = ctx.lk.clone().unwrap_or_default();
        writeln!(
            out,
            "#\n### Device seems to have been resized!\n### dumping meta data from the last known position\n\
             ### current size of {}: {} byte\n### expected position of meta data:",
            ctx.dev.path, ctx.dev.size
        )?;
        let sb = ctx.sb;
        let expected = md_byte_offset(ctx.index, ctx.dev.size);
        writeln!(out, "## md_offset {expected}")?;
        writeln!(
            out,
            "## al_offset {}",
            expected.saturating_add_signed(i64::from(sb.al_offset) * 512)
        )?;
        writeln!(
            out,
            "## bm_offset {}",
            expected.saturating_add_signed(i64::from(sb.bm_offset) * 512)
        )?;
        writeln!(
            out,
            "### last known size of {}: {} byte\n### adjusted position of meta data:",
            lk.name, lk.size
        )?;
        ctx.adopt(sb, md_byte_offset(ctx.index, lk.size));
    }
    let sb = ctx.sb;
    writeln!(
        out,
        "# md_offset {}\n# al_offset {}\n# bm_offset {}\n",
        ctx.md_offset, ctx.al_offset, ctx.bm_offset
    )?;
    writeln!(out, "uuid {{")?;
    writeln!(
        out,
        "    0x{:016X}; 0x{:016X}; 0x{:016X}; 0x{:016X};",
        sb.uuid[0], sb.uuid[1], sb.uuid[2], sb.uuid[3]
    )?;
    // drbd-utils 9.x prints 0 here for v08 (a lost field); 8.4's drbdmeta
    // and we print the real flags, so restore-md keeps them.
    writeln!(out, "    flags 0x{:08X};\n}}", sb.flags)?;
    writeln!(out, "# al-extents {};", sb.al_nr_extents)?;
    writeln!(out, "la-size-sect {};", sb.la_size_sect)?;
    writeln!(out, "bm-byte-per-bit {};", sb.bm_bytes_per_bit)?;
    writeln!(out, "device-uuid 0x{:016X};", sb.device_uuid)?;
    writeln!(
        out,
        "la-peer-max-bio-size {};",
        sb.la_peer_max_bio_size as i32
    )?;
    writeln!(out, "al-stripes {};", sb.al_stripes)?;
    writeln!(out, "al-stripe-size-4k {};", sb.al_stripe_size_4k)?;
    writeln!(out, "# bm-bytes {};", ctx.bm_bytes)?;
    write!(out, "bm ")?;
    let bm_offset = ctx.bm_offset;
    let dev = &ctx.dev;
    let bits = dump::print_bitmap(
        &mut out,
        ctx.bm_bytes / 4,
        dump::WINDOW_BYTES,
        |off, len| dev.read_at(bm_offset + off, len),
    )?;
    writeln!(out, "# bits-set {bits};")?;
    out.flush()?;
    drop(out);
    ctx.close();
    Ok(0)
}

fn read_dump(file: Option<&String>) -> Vec<u8> {
    match file {
        Some(path) => {
            std::fs::read(path).unwrap_or_else(|_| fail(20, &format!("open of '{path}' failed.")))
        }
        None => {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut text);
            text
        }
    }
}

fn parse_dump_or_exit(text: &[u8]) -> dump::Dump {
    let dump = dump::parse(text, "v08").unwrap_or_else(|e| fail(10, &e.to_string()));
    if dump.bm_bytes_per_bit != 4096 {
        fail(
            10,
            "Invalid value for bm-byte-per-bit: DRBD 8.4 requires 4096",
        );
    }
    dump
}

fn verify_dump(args: &[String]) -> Result<u8> {
    parse_dump_or_exit(&read_dump(args.first()));
    println!("input file parsed ok");
    Ok(0)
}

fn restore_md(ctx: &mut Ctx<'_>, file: Option<&String>) -> Result<u8> {
    let text = read_dump(file);
    if ctx.find()? != Found::None
        && !confirm(ctx.opts.force, "Valid meta-data in place, overwrite?")
    {
        return Ok(1);
    }
    let dump = parse_dump_or_exit(&text);
    let opts = ctx.opts;
    let (mut stripes, mut stripe_size) = (dump.al_stripes, dump.al_stripe_size_4k);
    if opts.al_options_used
        && (
            u64::from(opts.al_stripes),
            u64::from(opts.al_stripe_size_4k),
        ) != (stripes, stripe_size)
    {
        eprintln!("override activity log striping from commandline");
        (stripes, stripe_size) = (opts.al_stripes.into(), opts.al_stripe_size_4k.into());
    }
    let al = u32::try_from(stripes)
        .ok()
        .zip(u32::try_from(stripe_size).ok())
        .and_then(|(s, z)| AlGeometry::new(s, z))
        .unwrap_or_else(|| {
            fail(
                10,
                &format!("invalid activity log striping: {stripes} x {stripe_size}"),
            )
        });
    let layout = ctx.layout(al);
    let mut sb = Superblock::new_created(&layout);
    sb.uuid = dump.uuid;
    sb.flags = dump.flags;
    sb.la_size_sect = dump.la_size_sect;
    sb.device_uuid = dump.device_uuid;
    sb.la_peer_max_bio_size = dump.la_peer_max_bio_size as u32;
    eprintln!("reinitializing");
    ctx.adopt_layout(&layout, sb);
    ctx.check_for_existing_data(ctx.max_usable_sect)?;

    // Like drbdmeta: write the dump's words (whole 512-byte sectors), at
    // most the bitmap of the last agreed size; leave the rest alone.
    let given = (dump.bitmap_words() * 8).div_ceil(512) * 512;
    let len = given.min(ctx.bm_bytes);
    if given > len {
        eprintln!("Bitmap info too large, truncated!");
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(dump::WINDOW_BYTES as u64);
        ctx.dev.write_at(
            ctx.bm_offset + done,
            &dump.bitmap_bytes(done / 8, n / 8),
            "meta_restore_md",
        )?;
        done += n;
    }
    ctx.write_superblock()?;
    ctx.close();
    println!("Successfully restored meta data");
    Ok(0)
}

/// The pre-8.4 activity log (`replay_al_07`): 512-byte sectors holding a
/// magic, a sequence number and 62 slot/extent pairs with an xor checksum.
fn replay_al_07(ring: &[u8], al_nr_extents: u32, hot: &mut [u32]) -> usize {
    const PER_SECTOR: u32 = 61;
    let be = |s: &[u8], at: usize| u32::from_be_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let mx = (1 + al_nr_extents.div_ceil(PER_SECTOR)).min(64) as usize;
    let sectors: Vec<Option<(u32, &[u8])>> = ring
        .chunks_exact(512)
        .take(mx)
        .map(|s| {
            let xor = (0..62).fold(0u32, |x, i| x ^ be(s, 8 + 8 * i + 4));
            (be(s, 0) == DRBD_MAGIC && be(s, 8 + 62 * 8) == xor).then(|| (be(s, 4), s))
        })
        .collect();
    let valid: Vec<usize> = (0..sectors.len())
        .filter(|&i| sectors[i].is_some())
        .collect();
    let Some(&first) = valid.first() else {
        eprintln!("No usable activity log found.");
        return 0;
    };
    let tr = |i: usize| sectors[i].map_or(0, |(t, _)| t);
    let (mut oldest, mut newest) = (first, first);
    for &i in &valid[1..] {
        if (tr(i).wrapping_sub(tr(oldest)) as i32) < 0 {
            oldest = i;
        }
        if (tr(i).wrapping_sub(tr(newest)) as i32) > 0 {
            newest = i;
        }
    }
    if valid.len() != sectors.len() {
        eprintln!(
            "{} corrupt or uninitialized AL transactions found",
            sectors.len() - valid.len()
        );
        eprintln!("You can safely ignore this if this node was cleanly stopped (no crash).");
    }
    let end = if newest < oldest {
        newest + sectors.len()
    } else {
        newest
    };
    for step in oldest..=end {
        let Some((_, s)) = sectors[step % sectors.len()] else {
            continue;
        };
        for i in (0..62).rev() {
            let (slot, extent) = (be(s, 8 + 8 * i), be(s, 8 + 8 * i + 4));
            if extent != AL_FREE_EXTENT && slot < AL_EXTENTS_MAX {
                hot[slot as usize] = extent;
            }
        }
    }
    valid.len()
}

/// Sets the bits of every hot extent in the on-disk bitmap, page by page
/// (drbdmeta's `apply_al`).
fn mark_hot_extents(ctx: &Ctx<'_>, hot: &mut [u32]) -> Result<()> {
    hot.sort_unstable();
    let limit = ctx.bm_bytes.div_ceil(512) * 512;
    let hot: Vec<u32> = hot
        .iter()
        .copied()
        .take_while(|&e| e != AL_FREE_EXTENT)
        .collect();
    if hot.is_empty() {
        eprintln!("Nothing to do.");
        return Ok(());
    }
    const PAGE: u64 = 4096;
    const EXTENTS_PER_PAGE: u64 = PAGE / BM_BYTES_PER_AL_EXTENT;
    let mut added = 0u64;
    let mut page: Option<(u64, [u64; 512])> = None;
    let flush = |page: &Option<(u64, [u64; 512])>| -> Result<()> {
        if let Some((n, words)) = page {
            let mut bytes = [0u8; PAGE as usize];
            let bm = words.iter().flat_map(|w| w.to_le_bytes());
            bytes.iter_mut().zip(bm).for_each(|(b, w)| *b = w);
            ctx.dev
                .write_at(ctx.bm_offset + n * PAGE, &bytes, "apply_al")?;
        }
        Ok(())
    };
    for extent in hot {
        let pos = u64::from(extent) * BM_BYTES_PER_AL_EXTENT;
        if pos >= limit {
            eprintln!("extent {extent} beyond end of bitmap! ({pos} >= {limit})");
            continue;
        }
        let n = pos / PAGE;
        if page.as_ref().map(|p| p.0) != Some(n) {
            flush(&page)?;
            let mut words = [0u64; 512];
            let bytes = ctx.dev.read_at(ctx.bm_offset + n * PAGE, PAGE as usize)?;
            Bitmap::new(&mut words, PAGE * 8 * 8)
                .context("page bitmap")?
                .load_le(0, &bytes);
            page = Some((n, words));
        }
        if let Some((_, words)) = page.as_mut() {
            let mut bm = Bitmap::new(words, PAGE * 8 * 8).context("page bitmap")?;
            added += bm.set_al_extent((u64::from(extent) % EXTENTS_PER_PAGE) as u32);
        }
    }
    flush(&page)?;
    eprintln!(
        "Marked additional {} as out-of-sync based on AL.",
        ppsize(added * 4)
    );
    Ok(())
}

fn apply_al(ctx: &mut Ctx<'_>) -> Result<u8> {
    let mut found = ctx.find()?;
    if found == Found::AtLastKnownLocation && move_internal_md(ctx).is_ok() {
        found = ctx.find()?;
    }
    if found != Found::Valid {
        eprintln!("No valid meta data found");
        return Ok(1);
    }
    let al = ctx.sb.al_geometry()?;
    let ring = ctx.dev.read_at(ctx.al_offset, al.size_bytes() as usize)?;
    let al_magic_at =
        |b: usize| ring.get(b * 4096..b * 4096 + 4) == Some(&al::DRBD_AL_MAGIC.to_be_bytes()[..]);
    let need_to_apply = ctx.sb.flags & MDF_PRIMARY_IND != 0;
    let mut hot = vec![AL_FREE_EXTENT; AL_EXTENTS_MAX as usize];
    let mut reinitialize = false;
    let mut updates = 0;
    if ctx.sb.magic == DRBD_MD_MAGIC_84_UNCLEAN
        || al_magic_at(0)
        || al_magic_at(1)
        || al != AlGeometry::DEFAULT
    {
        let corrupt = ring
            .chunks_exact(AL_TRANSACTION_BYTES)
            .filter(|&b| {
                b.try_into()
                    .map_or(true, |b| al::Transaction::decode(b).is_err())
            })
            .count();
        if corrupt > 0 && corrupt < al.size_4k() as usize {
            eprintln!("{corrupt} corrupt AL transactions found");
        }
        match al::replay(&ring, &al, &mut hot) {
            Ok(summary) => updates = summary.updates,
            Err(e) => {
                eprintln!("{e}");
                if need_to_apply {
                    return Ok(if e == al::AlError::NoValidTransaction {
                        1
                    } else {
                        2
                    });
                }
                eprintln!("Error ignored, no need to apply the AL");
                reinitialize = true;
            }
        }
    } else {
        // First run after an upgrade from 8.3: convert the old format.
        updates = replay_al_07(&ring, ctx.sb.al_nr_extents, &mut hot) as u32;
        reinitialize = true;
    }
    let mut update_superblock = false;
    if updates > 0 && need_to_apply {
        mark_hot_extents(ctx, &mut hot)?;
        update_superblock = true;
    }
    if reinitialize || updates > 0 {
        ctx.write_initialized_al(&al)?;
    }
    if !ctx.sb.is_clean() {
        update_superblock = true;
    }
    if update_superblock {
        // MDF_PRIMARY_IND stays: drbdadm uses it to pick degr-wfc-timeout.
        ctx.sb.flags |= MDF_AL_CLEAN;
        ctx.sb.magic = DRBD_MD_MAGIC_08;
        ctx.write_superblock()?;
        ctx.close();
    }
    Ok(0)
}

fn wipe_md(ctx: &mut Ctx<'_>) -> Result<u8> {
    if ctx.find()? != Found::Valid {
        eprintln!("There appears to be no drbd meta data to wipe out?");
        return Ok(0);
    }
    if !confirm(
        ctx.opts.force,
        "Do you really want to wipe out the DRBD meta data?",
    ) {
        println!("Operation cancelled.");
        fail(1, "");
    }
    println!("Wiping meta data...");
    ctx.dev
        .write_at(ctx.md_offset, &[0u8; MD_SUPERBLOCK_BYTES], "meta_wipe_md")?;
    ctx.dev.sync();
    println!("DRBD meta data block successfully wiped out.");
    if let Some(minor) = ctx.minor {
        lk_delete(minor);
    }
    Ok(0)
}

/// Applies a set-gi argument "current:bitmap:h1:h2:c:u:p:n:f:o:x" (empty
/// fields keep the old value, UUIDs in hex, flags 0 or 1).
fn apply_gi(sb: &mut Superblock, text: &str) {
    let mut fields = text.split(':');
    for uuid in sb.uuid.iter_mut() {
        let Some(field) = fields.next() else { return };
        if !field.is_empty() {
            let hex = field
                .strip_prefix("0x")
                .or_else(|| field.strip_prefix("0X"))
                .unwrap_or(field);
            *uuid = u64::from_str_radix(hex, 16)
                .unwrap_or_else(|_| fail(10, &format!("'{field}' is not a number.")));
        }
    }
    let bits = [
        MDF_CONSISTENT,
        MDF_WAS_UP_TO_DATE,
        MDF_PRIMARY_IND,
        MDF_CONNECTED_IND,
        MDF_FULL_SYNC,
        MDF_PEER_OUT_DATED,
        MDF_CRASHED_PRIMARY,
    ];
    for bit in bits {
        let Some(field) = fields.next() else { return };
        if field.is_empty() {
            continue;
        }
        // strtoul(.., 0): decimal, 0x hex or 0 octal.
        let value = if let Some(hex) = field
            .strip_prefix("0x")
            .or_else(|| field.strip_prefix("0X"))
        {
            u64::from_str_radix(hex, 16)
        } else if field.len() > 1 && field.starts_with('0') {
            u64::from_str_radix(&field[1..], 8)
        } else {
            field.parse()
        };
        match value {
            Ok(0) => sb.flags &= !bit,
            Ok(1) => sb.flags |= bit,
            Ok(v) => fail(10, &format!("'{v}' is not 0 or 1.")),
            Err(_) => fail(10, &format!("'{field}' is not a number.")),
        }
    }
}

fn set_gi(ctx: &mut Ctx<'_>, gi: Option<&String>) -> Result<u8> {
    let Some(gi) = gi else {
        fail(10, "Required Argument missing")
    };
    if ctx.find()? != Found::Valid {
        return Ok(1);
    }
    let mut new = ctx.sb;
    apply_gi(&mut new, gi);
    println!("previously {}", gi_line(&ctx.sb));
    println!("set GI to  {}", gi_line(&new));
    if !confirm(ctx.opts.force, "Write new GI to disk?") {
        println!("Operation canceled.");
        fail(0, "");
    }
    ctx.sb = new;
    ctx.write_superblock()?;
    ctx.close();
    Ok(0)
}

fn outdate_or_invalidate(ctx: &mut Ctx<'_>, command: &str) -> Result<u8> {
    if ctx.find()? != Found::Valid {
        return Ok(1);
    }
    if command == "outdate" {
        if ctx.sb.flags & MDF_CONSISTENT == 0 {
            fail(5, "Device is inconsistent.");
        }
        ctx.sb.flags &= !MDF_WAS_UP_TO_DATE;
    } else {
        ctx.sb.flags &= !(MDF_CONSISTENT | MDF_WAS_UP_TO_DATE);
        ctx.sb.flags |= MDF_FULL_SYNC;
    }
    ctx.write_superblock()?;
    ctx.close();
    Ok(0)
}

/// Moves internal metadata from where it was before the backing device
/// grew (`ctx.lk`) to the end of the device: activity log as is, the old
/// bitmap to the start of the new, larger bitmap area. Bits for the grown
/// part are set (out of sync), so nothing unknown is ever trusted.
fn move_internal_md(ctx: &mut Ctx<'_>) -> Result<()> {
    let lk = ctx.lk.clone().context("no last-known location")?;
    let old = ctx.sb;
    let old_md = md_byte_offset(ctx.index, lk.size);
    let old_al = old_md.saturating_add_signed(i64::from(old.al_offset) * 512);
    let old_bm = old_md.saturating_add_signed(i64::from(old.bm_offset) * 512);
    let old_bm_len = old.bitmap_sectors() * 512;
    let al = old.al_geometry()?;
    let layout = ctx.layout(al);
    let mut sb = old;
    sb.md_size_sect = layout.md_size_sect;
    sb.al_offset = layout.al_offset;
    sb.bm_offset = layout.bm_offset;
    eprintln!("Moving the internal meta data to its proper location");
    ctx.adopt_layout(&layout, sb);
    // New areas are at higher addresses and may overlap the old ones:
    // copy back to front.
    let al_ring = ctx.dev.read_at(old_al, al.size_bytes() as usize)?;
    ctx.dev.write_at(ctx.al_offset, &al_ring, "move AL")?;
    let new_bm_len = layout.bitmap_sectors() * 512;
    let chunk = dump::WINDOW_BYTES as u64;
    let mut end = old_bm_len.min(new_bm_len);
    while end > 0 {
        let start = end.saturating_sub(chunk);
        let data = ctx.dev.read_at(old_bm + start, (end - start) as usize)?;
        ctx.dev
            .write_at(ctx.bm_offset + start, &data, "move bitmap")?;
        end = start;
    }
    let mut start = old_bm_len.min(new_bm_len);
    while start < new_bm_len {
        let n = (new_bm_len - start).min(chunk);
        ctx.dev.write_at(
            ctx.bm_offset + start,
            &vec![0xff; n as usize],
            "move bitmap",
        )?;
        start += n;
    }
    ctx.write_superblock()?;
    println!("Internal drbd meta data successfully moved.");
    if old_md < ctx.bm_offset {
        // The old superblock is outside the new area: wipe it.
        ctx.dev.set_guard(old_md, 4096);
        ctx.dev
            .write_at(old_md, &[0u8; MD_SUPERBLOCK_BYTES], "wipe old superblock")?;
    }
    ctx.close();
    Ok(())
}

fn check_resize(ctx: &mut Ctx<'_>) -> Result<u8> {
    match ctx.find()? {
        Found::Valid => {
            if let Some(minor) = ctx.minor {
                if ctx.index != MetaIndex::FlexInternal {
                    lk_delete(minor);
                } else {
                    let lk = lk_load(minor).unwrap_or_default();
                    ctx.update_lk = lk.size != ctx.dev.size || lk.uuid != ctx.sb.device_uuid;
                }
            }
            ctx.close();
            Ok(0)
        }
        Found::None => {
            if ctx.index != MetaIndex::FlexInternal {
                eprintln!("Operation only supported for >= v8 internal meta data");
            } else {
                eprintln!("no suitable meta data found :(");
            }
            Ok(1)
        }
        Found::AtLastKnownLocation => Ok(if move_internal_md(ctx).is_ok() { 0 } else { 1 }),
    }
}

/// What sits at the superblock position already, if anything we know.
fn existing_format(
    block: &[u8; MD_SUPERBLOCK_BYTES],
    index: MetaIndex,
    sectors: u64,
) -> Option<&'static str> {
    if valid_md(block, index, sectors).is_some() {
        return Some("v08");
    }
    let magic = u32::from_be_bytes([block[60], block[61], block[62], block[63]]);
    (magic == DRBD_MD_MAGIC_09).then_some("v09")
}

fn create_md(ctx: &mut Ctx<'_>) -> Result<u8> {
    let opts = ctx.opts;
    let al = AlGeometry::new(opts.al_stripes, opts.al_stripe_size_4k)
        .unwrap_or_else(|| fail(10, "invalid al-stripe* settings"));
    let found = ctx.find()?;
    if found == Found::AtLastKnownLocation {
        if opts.al_options_used && ctx.sb.al_geometry().ok() != Some(al) {
            fail(
                20,
                "Cannot move after offline resize and change AL-striping at the same time, yet.",
            );
        }
        if !opts.force
            && confirm(
                opts.force,
                "Move internal meta data from last-known position?\n",
            )
        {
            ctx.check_for_existing_data(ctx.max_usable_sect)?;
            return Ok(if move_internal_md(ctx).is_ok() { 0 } else { 1 });
        }
    }
    let sectors = ctx.dev.sectors();
    let block = ctx.read_superblock(md_byte_offset(ctx.index, ctx.dev.size))?;
    if let Some(have) = existing_format(&block, ctx.index, sectors) {
        if ctx.index.is_internal() {
            eprintln!("You want me to create a v08 style flexible-size internal meta data block.");
            eprintln!(
                "There appears to be a {have} flexible-size internal meta data block\nalready in place on {} at byte offset {}",
                ctx.dev.path, ctx.md_offset
            );
        }
        if have == "v08"
            && found == Found::Valid
            && ctx.sb.al_geometry().ok() != Some(al)
            && ctx.index.is_internal()
            && confirm(
                opts.force,
                "Do you want to change the activity log stripe settings *only*?",
            )
        {
            fail(30, "Sorry, not yet fully implemented\nTry dump-md > dump.txt; restore-md -s x -z y dump.txt");
        }
        let question = match (have, ctx.index.is_internal()) {
            ("v08", true) => "Do you really want to overwrite the existing meta-data?".to_owned(),
            ("v08", false) => "Valid meta data seems to be in place.\nDo you really want to overwrite?".to_owned(),
            (have, _) => format!("So you want me to replace the {have} meta-data\nwith newly initialized v08 meta-data?"),
        };
        if !confirm(opts.force, &question) {
            println!("Operation cancelled.");
            fail(1, "");
        }
    }

    let layout = ctx.layout(al);
    let mut sb = Superblock::new_created(&layout);
    sb.la_peer_max_bio_size = opts.peer_max_bio_size;
    ctx.adopt_layout(&layout, sb);
    ctx.check_for_existing_data(layout.max_capacity)?;
    println!("initializing activity log");
    ctx.write_initialized_al(&al)?;
    // Zero the bitmap for the whole device, as drbdmeta does, so set-gi
    // can declare thinly provisioned all-zero devices in sync. The message
    // names drbd-utils' figure, the bitmap for the size of the device given.
    let device_bitmap = (bitmap_bytes(sectors).div_ceil(512) * 512).min(layout.bitmap_sectors() * 512);
    eprintln!("initializing bitmap ({} KB) to all zero", device_bitmap >> 10);
    // On an external meta device that size is the meta device's own, not
    // the backing device's, which drbdmeta never sees: clear the whole
    // bitmap area, or stale bits of an earlier use survive.
    let zero_len = if ctx.index.is_internal() { device_bitmap } else { layout.bitmap_sectors() * 512 };
    let mut done = 0;
    while done < zero_len {
        let n = (zero_len - done).min(dump::WINDOW_BYTES as u64);
        ctx.dev.write_at(
            ctx.bm_offset + done,
            &vec![0u8; n as usize],
            "md_initialize_common:BM",
        )?;
        done += n;
    }
    println!("Writing meta data...");
    ctx.write_superblock()?;
    ctx.close();
    println!("New drbd meta data block successfully created.");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppsize_rounds_like_drbd_utils() {
        assert_eq!(ppsize(65000), "63 MB");
        assert_eq!(ppsize(9999), "9999 KB");
        assert_eq!(ppsize(4096 * 1024), "4096 MB");
        assert_eq!(ppsize((9 << 20) + 512), "9217 MB");
    }

    #[test]
    fn set_gi_fields() {
        let mut sb = Superblock {
            uuid: [4, 0, 0, 0],
            flags: MDF_AL_CLEAN,
            ..Default::default()
        };
        apply_gi(&mut sb, "1234567890ABCDEF:1111:0x2222:3333:1:1:0:1:0:1:0");
        assert_eq!(sb.uuid, [0x1234_5678_90AB_CDEF, 0x1111, 0x2222, 0x3333]);
        assert_eq!(
            sb.flags,
            MDF_AL_CLEAN
                | MDF_CONSISTENT
                | MDF_WAS_UP_TO_DATE
                | MDF_CONNECTED_IND
                | MDF_PEER_OUT_DATED
        );
        assert_eq!(
            gi_line(&sb),
            "1234567890ABCDEF:0000000000001111:0000000000002222:0000000000003333:1:1:0:1:0:1:0"
        );
        apply_gi(&mut sb, "::::0");
        assert_eq!(sb.uuid[0], 0x1234_5678_90AB_CDEF);
        assert_eq!(sb.flags & MDF_CONSISTENT, 0);
    }

    #[test]
    fn dump_time_is_well_formed() {
        let t = dump_time();
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[19..26], " +0000 ");
    }

    #[test]
    fn old_activity_log_replays() {
        let mut ring = vec![0u8; 32768];
        let mut put = |sector: usize, tr: u32, pairs: &[(u32, u32)]| {
            let s = &mut ring[sector * 512..sector * 512 + 512];
            s[0..4].copy_from_slice(&DRBD_MAGIC.to_be_bytes());
            s[4..8].copy_from_slice(&tr.to_be_bytes());
            let mut xor = 0;
            for i in 0..62 {
                let (slot, ext) = pairs.get(i).copied().unwrap_or((u32::MAX, u32::MAX));
                s[8 + 8 * i..12 + 8 * i].copy_from_slice(&slot.to_be_bytes());
                s[12 + 8 * i..16 + 8 * i].copy_from_slice(&ext.to_be_bytes());
                xor ^= ext;
            }
            s[504..508].copy_from_slice(&xor.to_be_bytes());
        };
        put(0, 10, &[(0, 5)]);
        put(1, 11, &[(0, 6), (1, 7)]);
        let mut hot = vec![AL_FREE_EXTENT; 100];
        assert_eq!(replay_al_07(&ring, 61, &mut hot), 2);
        assert_eq!(&hot[..3], &[6, 7, AL_FREE_EXTENT]);
    }
}
