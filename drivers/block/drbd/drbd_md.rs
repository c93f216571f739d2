//! The v08 metadata of an attached device: read and checked at attach
//! (replaying the activity log of an unclean shutdown into the bitmap),
//! kept in memory while attached, written back on detach
//! (`drbd_md_read`/`drbd_md_sync` of `drbd_main.c`, `drbdmeta apply-al`).
//! It is internal (at the end of the backing device) or external: flexible
//! (the whole meta device) or indexed (a 128 MiB slot of a meta device that
//! several minors may share). [`MetaIo`] sends every metadata I/O to the
//! right device, so the rest of the driver only ever names the backing
//! device.

use kernel::prelude::*;

use crate::drbd_actlog::ActivityLog;
use crate::drbd_bitmap::BitmapMem;
use crate::drbd_include::al::{self, AlGeometry};
use crate::drbd_include::bitmap as bm_layout;
use crate::drbd_include::genl::{self as api, ConnState, DiskState, RetCode};
use crate::drbd_include::uuid::Uuids;
use crate::drbd_include::md::{self, Layout, MetaIndex, Superblock};
use crate::kernel_glue::block::{BdevRef, LowerDev, MetaIo, MD_BLOCK_SIZE};
use crate::{AdmError, AdmResult};

/// Everything about the metadata of an attached device.
pub(crate) struct MetaData {
    pub(crate) layout: Layout,
    pub(crate) sb: Superblock,
    pub(crate) io: MetaIo,
    pub(crate) bitmap: BitmapMem,
    pub(crate) al: ActivityLog,
    /// This node went down as Primary and has not had both disks
    /// UpToDate since (8.4's CRASHED_PRIMARY): the handshake makes it
    /// SyncSource of what its activity log marked (uuid_compare rule 40).
    pub(crate) crashed_primary: bool,
    block: KBox<[u8; MD_BLOCK_SIZE]>,
}

fn md_error(reason: &'static str) -> AdmError {
    AdmError::new(RetCode::MdInvalid, reason)
}

fn io_error(_: Error) -> AdmError {
    AdmError::new(RetCode::IoMdDisk, "I/O error on the meta data area")
}

fn nomem(_: impl core::fmt::Debug) -> AdmError {
    AdmError::new(RetCode::NoMem, "out of memory")
}

/// Flexible external metadata needs a meta device of at least 1 MiB
/// (`drbd_adm_attach`: "otherwise it does not make sense").
const FLEX_EXTERNAL_MIN_SECTORS: u64 = 2 << 10;

/// The message for a layout that cannot be placed (`Layout::compute`).
fn layout_error(error: md::MdError) -> AdmError {
    match error {
        md::MdError::DeviceTooSmall => AdmError::new(RetCode::MdDiskTooSmall, "device too small for its meta data"),
        md::MdError::DeviceTooLarge => AdmError::new(RetCode::MdInvalid, "device too large for its meta data"),
        md::MdError::IndexedNeedsDefaultAl => {
            md_error("indexed meta data needs the default activity log (1 stripe of 32 KiB)")
        }
        _ => md_error("meta data offsets don't make sense"),
    }
}

/// Where the superblock is (`drbd_md_ss`), after checking that the meta
/// device is large enough for the kind of metadata (`drbd_adm_attach`'s
/// `min_md_device_sectors`), before anything is read or written.
fn superblock_sector(index: MetaIndex, backing_sectors: u64, meta_sectors: u64) -> AdmResult<u64> {
    match index {
        MetaIndex::Internal | MetaIndex::FlexInternal => (backing_sectors & !7)
            .checked_sub(md::MD_4KB_SECT)
            .ok_or(AdmError::new(RetCode::MdDiskTooSmall, "device too small for meta data")),
        MetaIndex::FlexExternal => {
            if meta_sectors < FLEX_EXTERNAL_MIN_SECTORS {
                pr_err!("refusing attach: meta device of {} sectors too small, flexible external meta data needs at least {}\n",
                    meta_sectors, FLEX_EXTERNAL_MIN_SECTORS);
                return Err(AdmError::new(RetCode::MdDiskTooSmall,
                    "meta device too small: flexible external meta data needs at least 1 MiB"));
            }
            Ok(0)
        }
        MetaIndex::Indexed(slot) => {
            let first = u64::from(slot).saturating_mul(md::MD_128MB_SECT);
            let needed = first.saturating_add(md::MD_128MB_SECT);
            if meta_sectors < needed {
                pr_err!("refusing attach: meta device of {} sectors too small, meta data index {} needs at least {}\n",
                    meta_sectors, slot, needed);
                return Err(AdmError::new(RetCode::MdDiskTooSmall,
                    "meta device too small for this index: indexed meta data needs (index + 1) x 128 MiB"));
            }
            Ok(first)
        }
    }
}

impl MetaData {
    /// Reads and checks the metadata of a backing device of
    /// `backing_sectors`: internal (on `dev`, the backing device), or
    /// external on `external`, the opened meta device, which this keeps
    /// (and releases when dropped). Nothing is written unless every check
    /// passes.
    pub(crate) fn load(
        dev: BdevRef<'_>,
        backing_sectors: u64,
        external: Option<LowerDev>,
        index: i32,
        al_extents: u32,
        minor: u32,
    ) -> AdmResult<Self> {
        let index = MetaIndex::from_raw(index).map_err(|_| AdmError::new(RetCode::MdIdxInvalid, "invalid meta data index"))?;
        let meta_sectors = match (&external, index.is_internal()) {
            (None, true) => backing_sectors,
            (Some(meta), false) => meta.nr_sectors(),
            // The caller pairs them; a mismatch is a bug, refused all the same.
            _ => return Err(AdmError::new(RetCode::MdIdxInvalid, "meta data index does not fit the meta device")),
        };
        let sb_sector = superblock_sector(index, backing_sectors, meta_sectors)?;
        let mut io = MetaIo::new(external, minor).map_err(nomem)?;
        let mut block = KBox::new([0u8; MD_BLOCK_SIZE], GFP_KERNEL).map_err(nomem)?;
        io.read(dev, sb_sector, &mut block).map_err(io_error)?;
        let mut sb = Superblock::decode(&block).map_err(|_| md_error("no valid meta data signature found (use 'drbdmeta create-md')"))?;
        let geometry = sb.al_geometry().map_err(|_| md_error("invalid activity log geometry in meta data"))?;
        let layout = Layout::compute(index, backing_sectors, meta_sectors, geometry).map_err(layout_error)?;
        // check_offsets_and_sizes: flexible external metadata spans the
        // whole meta device it was created on; a smaller one lost its end.
        if index == MetaIndex::FlexExternal && u64::from(sb.md_size_sect) > meta_sectors {
            return Err(md_error("meta device smaller than its meta data (was it shrunk?)"));
        }
        sb.check_layout(&layout).map_err(|_| md_error("meta data does not match the device size (was it resized?)"))?;
        if sb.la_size_sect > layout.max_capacity {
            return Err(AdmError::new(RetCode::ImplicitShrink, "device smaller than the size recorded in the meta data"));
        }
        if !index.is_internal() && layout.max_capacity < backing_sectors {
            // drbd_get_max_capacity clips the device to what the bitmap covers.
            pr_warn!("meta data covers only {} of the {} sectors of the backing device, the device is limited to that\n",
                layout.max_capacity, backing_sectors);
        }
        // What drbd_md_set_sector_offsets makes of a flexible external meta
        // device that grew: all of it.
        sb.md_size_sect = layout.md_size_sect;
        let (area_first, area_sectors) = layout.area();
        io.confine_writes(area_first, area_sectors);
        if crate::kernel_glue::faults::insert(minor, crate::drbd_include::faults::Fault::BitmapAlloc) {
            return Err(AdmError::new(RetCode::NoMemBitmap, "out of memory for the bitmap (simulated)"));
        }
        let bitmap = BitmapMem::new(layout.max_capacity).map_err(nomem)?;
        let on_disk_blocks = usize::try_from(layout.bitmap_sectors() / 8).unwrap_or(0);
        for i in 0..bitmap.blocks().min(on_disk_blocks) {
            io.read(dev, layout.bm_sector().saturating_add(i as u64 * 8), &mut block).map_err(io_error)?;
            bitmap.load_block(i, &block);
        }
        let al = ActivityLog::new(al_extents, geometry, layout.al_sector(), layout.bm_sector()).map_err(nomem)?;
        let crashed_primary = md::crashed_primary_at_attach(sb.flags);
        let mut this = Self { layout, sb, io, bitmap, al, crashed_primary, block };
        if !this.sb.is_clean() {
            this.replay_activity_log(dev)?;
        }
        this.initialize_ring(dev)?;
        // drbd_adm_attach: metadata that asks for a full sync (a resize cut
        // short), or a crashed Primary that wrote no activity log
        // (`al-updates no`), cannot tell what it may have torn: all of it.
        if md::full_sync_at_attach(this.sb.flags) {
            pr_info!("drbd{}: Assuming that all blocks are out of sync (aka FullSync)\n", minor);
            let exposed = this.sb.la_size_sect;
            this.set_all_out_of_sync(dev, exposed).map_err(io_error)?;
            this.sb.flags &= !md::MDF_FULL_SYNC;
        }
        // From now on an unclean stop must be detectable: drop the clean
        // flag on disk before the first write can happen.
        this.sb.flags &= !md::MDF_AL_CLEAN;
        this.sb.magic = md::DRBD_MD_MAGIC_84_UNCLEAN;
        // The last agreed size stays (8.4's drbd_determine_dev_size at
        // attach keeps it: a device agreed smaller with its peer does not
        // grow by being attached again); fresh metadata gets all there is.
        if this.sb.la_size_sect == 0 {
            this.sb.la_size_sect = this.layout.max_capacity;
        }
        this.sb.al_nr_extents = u32::try_from(this.al.extents()).unwrap_or(al::AL_EXTENTS_DEFAULT);
        this.write_superblock(dev).map_err(io_error)?;
        Ok(this)
    }

    /// The indexed external metadata slot this occupies, if any: two
    /// minors must never share one.
    pub(crate) fn indexed_slot(&self) -> Option<u32> {
        match self.layout.index {
            MetaIndex::Indexed(slot) => Some(slot),
            _ => None,
        }
    }

    /// The device number of the external meta device, if any.
    pub(crate) fn meta_device_number(&self) -> Option<u32> {
        self.io.external_device_number()
    }

    /// Usable data size in sectors.
    pub(crate) fn capacity(&self) -> u64 {
        self.layout.max_capacity
    }

    /// The last agreed size in sectors (`la_size_sect`, at most
    /// [`Self::capacity`]: `load` refuses more).
    pub(crate) fn agreed_size(&self) -> u64 {
        self.sb.la_size_sect.min(self.layout.max_capacity)
    }

    /// The disk state the flags give at attach (no peer to ask).
    pub(crate) fn disk_state(&self) -> DiskState {
        match self.sb.disk_state() {
            // drbd_adm_attach: Consistent is UpToDate with fencing
            // dont-care (the only policy rdrbd has).
            DiskState::Consistent => DiskState::UpToDate,
            state => state,
        }
    }

    /// Own data generation UUIDs.
    pub(crate) fn uuids(&self) -> Uuids {
        let u = &self.sb.uuid;
        Uuids { current: u[md::UI_CURRENT], bitmap: u[md::UI_BITMAP], history: [u[md::UI_HISTORY_START], u[md::UI_HISTORY_END]] }
    }

    fn set_uuids(&mut self, uuids: &Uuids) {
        self.sb.uuid = [uuids.current, uuids.bitmap, uuids.history[0], uuids.history[1]];
    }

    /// `new-current-uuid`: a new current UUID (the old one to the bitmap
    /// slot); with `clear_bitmap` the bitmap is cleared and written, and
    /// with `skip_sync` (connected, fresh pair) the bitmap UUID is cleared
    /// too and the disk is UpToDate. Persisted.
    pub(crate) fn new_current_uuid(&mut self, dev: BdevRef<'_>, primary: bool, clear_bitmap: bool, skip_sync: bool) -> Result {
        let mut uuids = self.uuids();
        uuids.new_current_uuid(crate::kernel_glue::random_u64(), primary);
        if clear_bitmap {
            self.bitmap.clear_all();
            self.write_bitmap(dev, true)?;
            if skip_sync {
                uuids.bitmap = 0;
                self.set_state_flags(primary, DiskState::UpToDate, DiskState::UpToDate, ConnState::Connected);
            }
        }
        self.set_uuids(&uuids);
        self.write_superblock(dev)
    }

    /// The peer skips the initial sync (P_UUIDS with SKIP_INITIAL_SYNC):
    /// adopt its current UUID, clear the bitmap, become UpToDate.
    pub(crate) fn skip_initial_sync(&mut self, dev: BdevRef<'_>, peer_current: u64, primary: bool) -> Result {
        let mut uuids = self.uuids();
        uuids.skip_initial_sync(peer_current, primary);
        self.set_uuids(&uuids);
        self.bitmap.clear_all();
        self.write_bitmap(dev, true)?;
        self.set_state_flags(primary, DiskState::UpToDate, DiskState::UpToDate, ConnState::Connected);
        self.write_superblock(dev)
    }

    /// Promotion to Primary (`drbd_set_role`): a new current UUID when the
    /// peer is out of reach (always when `forced`), then the state flags.
    pub(crate) fn promote(&mut self, dev: BdevRef<'_>, conn: ConnState, pdsk: DiskState, forced: bool) -> Result {
        let mut uuids = self.uuids();
        uuids.promote(crate::kernel_glue::random_u64(), conn, pdsk, forced);
        self.set_uuids(&uuids);
        self.set_state_flags(true, DiskState::UpToDate, pdsk, conn);
        self.write_superblock(dev)
    }

    /// Demotion to Secondary: bit 0 of the current UUID and the primary
    /// indicator go.
    pub(crate) fn demote(&mut self, dev: BdevRef<'_>, disk: DiskState, pdsk: DiskState, conn: ConnState) -> Result {
        let mut uuids = self.uuids();
        uuids.demote();
        self.set_uuids(&uuids);
        self.set_state_flags(false, disk, pdsk, conn);
        self.write_superblock(dev)
    }

    /// The `MDF_*` state flags of `drbd_md_sync` (via `__drbd_set_state`).
    pub(crate) fn set_state_flags(&mut self, primary: bool, disk: DiskState, pdsk: DiskState, conn: ConnState) {
        self.sb.flags = md::state_flags(self.sb.flags, primary, disk, pdsk, conn, self.crashed_primary);
    }

    /// After a state change: the flags as the state has them, written if
    /// they changed (8.4 marks the metadata dirty in `__drbd_set_state`).
    pub(crate) fn sync_state_flags(&mut self, dev: BdevRef<'_>, primary: bool, disk: DiskState, pdsk: DiskState, conn: ConnState) -> Result {
        let before = self.sb.flags;
        self.set_state_flags(primary, disk, pdsk, conn);
        if self.sb.flags == before {
            return Ok(());
        }
        self.write_superblock(dev)
    }

    /// Whether the flags say the peer's disk is outdated (attach restores
    /// the peer's disk state from it, as `drbd_adm_attach`).
    pub(crate) fn peer_outdated(&self) -> bool {
        self.sb.flags & md::MDF_PEER_OUT_DATED != 0
    }

    /// The P_UUIDS flags the metadata contributes (`_drbd_send_uuids`).
    pub(crate) fn uuid_flags(&self) -> u64 {
        if self.crashed_primary { crate::drbd_include::uuid::uuid_flags::CRASHED_PRIMARY } else { 0 }
    }

    /// Persists the `MDF_*` flags of a state change that has no UUID
    /// change (`outdate`): written durably before the state is shown.
    pub(crate) fn persist_state(&mut self, dev: BdevRef<'_>, primary: bool, disk: DiskState, pdsk: DiskState, conn: ConnState) -> Result {
        self.set_state_flags(primary, disk, pdsk, conn);
        self.write_superblock(dev)
    }

    /// Marks every extent the activity log names as out of sync, as
    /// `drbdmeta apply-al` does, and writes the bitmap.
    fn replay_activity_log(&mut self, dev: BdevRef<'_>) -> AdmResult {
        let geometry = self.layout.al;
        let bytes = usize::try_from(geometry.size_bytes()).map_err(nomem)?;
        let mut ring = KVVec::from_elem(0u8, bytes, GFP_KERNEL).map_err(nomem)?;
        for (i, chunk) in ring.chunks_exact_mut(MD_BLOCK_SIZE).enumerate() {
            self.io.read(dev, self.layout.al_sector().saturating_add(i as u64 * 8), &mut self.block).map_err(io_error)?;
            chunk.copy_from_slice(&self.block[..]);
        }
        let mut slots = KVVec::from_elem(al::AL_FREE_EXTENT, al::AL_EXTENTS_MAX as usize, GFP_KERNEL).map_err(nomem)?;
        let summary = al::replay(&ring, &geometry, &mut slots)
            .map_err(|_| AdmError::new(RetCode::MdUnclean, "activity log unreadable (use 'drbdmeta apply-al' to inspect)"))?;
        let mut extents = 0u32;
        let mut marked = 0u64;
        for extent in al::active_extents(&slots) {
            let (first, last) = bm_layout::al_extent_bits(extent);
            marked += self.bitmap.set_bits(first, last);
            extents += 1;
        }
        pr_info!("activity log replayed: {} transactions, {} active extents, {} KiB marked out of sync\n",
            summary.updates, extents, marked * 4);
        self.write_bitmap(dev, true).map_err(io_error)
    }

    /// Fills the ring with "initialized" blocks, so transactions numbered
    /// from 0 can never be mistaken for older ones.
    fn initialize_ring(&mut self, dev: BdevRef<'_>) -> AdmResult {
        al::encode_initialized(&mut self.block);
        for i in 0..u64::from(self.layout.al.size_4k()) {
            self.io.write(dev, self.layout.al_sector().saturating_add(i * 8), &self.block, false).map_err(io_error)?;
        }
        Ok(())
    }

    /// Writes changed (or, with `all`, every) bitmap blocks.
    fn write_bitmap(&mut self, dev: BdevRef<'_>, all: bool) -> Result {
        for i in 0..self.bitmap.blocks() {
            if self.bitmap.store_block(i, &mut self.block) || all {
                self.io.write(dev, self.layout.bm_sector().saturating_add(i as u64 * 8), &self.block, false)?;
            }
        }
        Ok(())
    }

    /// A new `al-extents` (see [`ActivityLog::resize`]), recorded in the
    /// superblock.
    pub(crate) fn set_al_extents(&mut self, dev: BdevRef<'_>, extents: u32) -> Result {
        self.al.resize(&self.bitmap, &mut self.io, dev, extents)?;
        self.sb.al_nr_extents = u32::try_from(self.al.extents()).unwrap_or(al::AL_EXTENTS_DEFAULT);
        self.write_superblock(dev)
    }

    /// The number of activity-log slots in use now.
    pub(crate) fn al_extents(&self) -> u32 {
        u32::try_from(self.al.extents()).unwrap_or(0)
    }

    /// `al-updates` (attach, disk-options): without, activity-log
    /// transactions are not written (the bitmap blocks of evicted extents
    /// still are), and the superblock says so (MDF_AL_DISABLED), so that
    /// a crashed Primary's next attach assumes a full sync.
    pub(crate) fn set_al_updates(&mut self, dev: BdevRef<'_>, on: bool) -> Result {
        self.al.set_updates(on);
        let flags = if on { self.sb.flags & !md::MDF_AL_DISABLED } else { self.sb.flags | md::MDF_AL_DISABLED };
        if flags == self.sb.flags {
            return Ok(());
        }
        self.sb.flags = flags;
        self.write_superblock(dev)
    }

    /// Writes the superblock, durably (flush + FUA).
    fn write_superblock(&mut self, dev: BdevRef<'_>) -> Result {
        self.block.fill(0);
        self.sb.encode(&mut self.block);
        self.io.write(dev, self.layout.md_offset, &self.block, true)
    }

    /// Clean shutdown after the last write: bitmap out, then the clean
    /// flag, so the next attach needs no replay.
    pub(crate) fn close(mut self, dev: BdevRef<'_>) -> Result {
        self.write_bitmap(dev, false)?;
        self.sb.flags |= md::MDF_AL_CLEAN;
        self.sb.magic = md::DRBD_MD_MAGIC_08;
        self.write_superblock(dev)
    }
}

/// Online resize (`drbd_determine_dev_size`, `drbd_bm_resize`).
impl MetaData {
    /// The layout the metadata gets for the backing (and meta) device as
    /// large as it is now (`drbd_md_set_sector_offsets`): internal
    /// metadata moves to the new end of a grown backing device.
    pub(crate) fn layout_now(&self, dev: BdevRef<'_>) -> AdmResult<Layout> {
        self.layout_with(dev, self.layout.al)
    }

    /// [`Self::layout_now`] with the activity log shaped `al` (a resize
    /// with `--al-stripes` / `--al-stripe-size-kB`).
    pub(crate) fn layout_with(&self, dev: BdevRef<'_>, al: AlGeometry) -> AdmResult<Layout> {
        let backing = dev.nr_sectors();
        let meta = self.io.external_sectors().unwrap_or(backing);
        Layout::compute(self.layout.index, backing, meta, al).map_err(layout_error)
    }

    /// Carries out a resize from `old_size` to `new_size` sectors of data over
    /// `new_layout`: the bitmap follows what the layout covers (the new
    /// area out of sync when `mark_new`), and when the metadata moved or
    /// the size changed it is written in full as 8.4 does: the superblock
    /// first with FULL_SYNC and AL_DISABLED (a crash in between leaves
    /// metadata that asks for a full sync), the activity log and the
    /// bitmap at their new place, then the superblock with the old flags.
    /// The caller holds the metadata lock, so no write passes the
    /// activity log meanwhile.
    pub(crate) fn resize(&mut self, dev: BdevRef<'_>, new_layout: Layout, old_size: u64, new_size: u64, mark_new: bool) -> Result {
        let mark = if mark_new { bm_layout::grown_bits(old_size, new_size) } else { None };
        let moved = new_layout.moved_from(&self.layout);
        if new_layout.max_capacity != self.layout.max_capacity {
            // Allocated before anything changes: out of memory leaves all as it was.
            self.bitmap = self.bitmap.resized(new_layout.max_capacity, mark)?;
        } else if let Some((first, last)) = mark {
            self.bitmap.set_bits(first, last);
        }
        if new_size < old_size {
            // What is no longer exposed is no longer out of sync (8.4's
            // bitmap shrinks with the device).
            if let Some(last) = self.bitmap.bits().checked_sub(1) {
                let first = new_size.div_ceil(8);
                if first <= last {
                    self.bitmap.clear_bits(first, last);
                }
            }
        }
        let size_changed = self.sb.la_size_sect != new_size;
        let al_changed = new_layout.al != self.layout.al;
        self.layout = new_layout;
        let (area_first, area_sectors) = self.layout.area();
        self.io.confine_writes(area_first, area_sectors);
        self.sb.md_size_sect = self.layout.md_size_sect;
        self.sb.al_offset = self.layout.al_offset;
        self.sb.bm_offset = self.layout.bm_offset;
        self.sb.la_size_sect = new_size;
        self.sb.al_stripes = self.layout.al.stripes();
        self.sb.al_stripe_size_4k = self.layout.al.stripe_size_4k();
        if !(moved || size_changed || al_changed) {
            return Ok(());
        }
        let flags = self.sb.flags;
        self.sb.flags |= md::MDF_FULL_SYNC | md::MDF_AL_DISABLED;
        self.write_superblock(dev)?;
        if moved || al_changed {
            self.al.relocate(&mut self.io, dev, self.layout.al, self.layout.al_sector(), self.layout.bm_sector())?;
        }
        pr_info!("Writing the whole bitmap, {}\n", match (size_changed, moved) {
            (true, true) => "size changed and md moved",
            (true, false) => "size changed",
            _ => "md moved",
        });
        self.write_bitmap(dev, true)?;
        self.sb.flags = flags;
        self.write_superblock(dev)?;
        if al_changed {
            pr_info!("Changed AL layout to al-stripes = {}, al-stripe-size-kB = {}\n",
                self.layout.al.stripes(), self.layout.al.stripe_size_4k().saturating_mul(4));
        }
        Ok(())
    }
}

/// Metadata updates of replication and resync (`drbd_receiver.c`,
/// `drbd_worker.c`), each persisted before it returns.
impl MetaData {
    /// A full sync is needed (`drbd_bmio_set_n_write`): every bit of the
    /// `exposed` sectors set, the bitmap written.
    pub(crate) fn set_all_out_of_sync(&mut self, dev: BdevRef<'_>, exposed: u64) -> Result {
        if let Some(last) = self.bits_in_use(exposed).checked_sub(1) {
            self.bitmap.set_bits(0, last);
        }
        self.write_bitmap(dev, true)
    }

    /// The bits that cover the `exposed` sectors (all while nothing is
    /// exposed): 8.4's bitmap has exactly those, ours covers the whole
    /// backing disk, so the bitmap exchange and a full sync stop there and
    /// two nodes with disks of different sizes exchange bitmaps of the
    /// size they agreed on.
    pub(crate) fn bits_in_use(&self, exposed: u64) -> u64 {
        match exposed {
            0 => self.bitmap.bits(),
            sectors => self.bitmap.bits().min(sectors.div_ceil(8)),
        }
    }

    /// Becoming SyncSource (`drbd_gen_and_send_sync_uuid`): a new sync
    /// UUID in the bitmap slot; returns it for P_SYNC_UUID.
    pub(crate) fn begin_sync_source(&mut self, dev: BdevRef<'_>, primary: bool) -> Result<u64> {
        let mut uuids = self.uuids();
        let sync_uuid = uuids.gen_sync_uuid(crate::kernel_glue::random_u64());
        self.set_uuids(&uuids);
        self.set_state_flags(primary, DiskState::UpToDate, DiskState::Inconsistent, ConnState::SyncSource);
        self.write_bitmap(dev, false)?;
        self.write_superblock(dev)?;
        Ok(sync_uuid)
    }

    /// Becoming SyncTarget (`receive_sync_uuid`): the sync UUID becomes
    /// current, and the disk Inconsistent until the resync is done.
    pub(crate) fn begin_sync_target(&mut self, dev: BdevRef<'_>, sync_uuid: u64, primary: bool) -> Result {
        let mut uuids = self.uuids();
        uuids.receive_sync_uuid(sync_uuid, primary);
        self.set_uuids(&uuids);
        self.set_state_flags(primary, DiskState::Inconsistent, DiskState::UpToDate, ConnState::SyncTarget);
        self.write_bitmap(dev, false)?;
        self.write_superblock(dev)
    }

    /// A resync ended (`drbd_resync_finished`): without failed blocks the
    /// UUIDs become equal to the peer's (`peer` is updated too); then the
    /// bitmap and the flags go to disk.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resync_finished(
        &mut self,
        dev: BdevRef<'_>,
        peer: &mut Uuids,
        was_sync_target: bool,
        primary: bool,
        complete: bool,
        disk: DiskState,
        pdsk: DiskState,
    ) -> Result {
        if complete {
            let mut uuids = self.uuids();
            uuids.resync_finished(peer, was_sync_target, primary);
            self.set_uuids(&uuids);
        }
        self.set_state_flags(primary, disk, pdsk, ConnState::Connected);
        self.write_bitmap(dev, false)?;
        self.write_superblock(dev)
    }

    /// The connection is gone. If we (or the peer) were Primary with an
    /// UpToDate disk and nothing tracked yet, the data moves on from here:
    /// a new current UUID, the old one in the bitmap slot
    /// (`after_state_ch`, lost contact to the peer's data). Returns whether
    /// it made one.
    pub(crate) fn lost_peer(&mut self, dev: BdevRef<'_>, primary: bool, peer_role: api::Role, disk: DiskState, had_peer_data: bool) -> Result<bool> {
        let new_current = had_peer_data && self.new_current_without_peer(primary, peer_role, disk);
        self.set_state_flags(primary, disk, DiskState::DUnknown, ConnState::NetworkFailure);
        self.write_bitmap(dev, false)?;
        self.write_superblock(dev)?;
        Ok(new_current)
    }

    /// The connected peer lost its disk (`pdsk` now Diskless or Failed):
    /// as [`Self::lost_peer`], the data moves on without it if we or the
    /// peer are Primary, and the bitmap tracks from here what the peer
    /// lacks. Returns whether it made a new current UUID.
    pub(crate) fn peer_lost_disk(&mut self, dev: BdevRef<'_>, primary: bool, peer_role: api::Role, disk: DiskState, pdsk: DiskState) -> Result<bool> {
        let new_current = self.new_current_without_peer(primary, peer_role, disk);
        self.set_state_flags(primary, disk, pdsk, ConnState::Connected);
        self.write_superblock(dev)?;
        Ok(new_current)
    }

    /// The data moves on without the peer's copy: a new current UUID (in
    /// memory) if we or the peer are Primary on an UpToDate disk with
    /// nothing tracked yet. Returns whether it made one.
    fn new_current_without_peer(&mut self, primary: bool, peer_role: api::Role, disk: DiskState) -> bool {
        let mut uuids = self.uuids();
        let role = if primary { api::Role::Primary } else { api::Role::Secondary };
        if !uuids.needs_new_current_on_lost_peer(role, peer_role, disk) {
            return false;
        }
        uuids.new_current(crate::kernel_glue::random_u64(), primary);
        self.set_uuids(&uuids);
        true
    }
}
