//! `/proc/drbd` in DRBD 8.4's format (drbd-utils and people read it).

use core::fmt::{self, Write};

use crate::drbd_include::genl as api;
use crate::kernel_glue::procfs::{ProcShow, SeqFile};
use crate::{Device, Drbd, RDRBD_VERSION, REL_VERSION};

impl ProcShow for Drbd {
    fn show(&self, out: &mut SeqFile) -> fmt::Result {
        writeln!(out, "version: {} (api:{}/proto:{}-{})",
            REL_VERSION, api::GENL_VERSION, api::PRO_VERSION_MIN, api::PRO_VERSION_MAX)?;
        // Where C DRBD prints its srcversion: our own identification.
        writeln!(out, "srcversion: rdrbd-{}", RDRBD_VERSION)?;
        let registry = self.registry();
        let mut previous: Option<u32> = None;
        for device in registry.devices() {
            // A blank line marks a gap in the minor numbers, as in DRBD.
            if previous.is_some_and(|p| p.checked_add(1) != Some(device.minor)) {
                writeln!(out)?;
            }
            previous = Some(device.minor);
            show_device(out, device)?;
        }
        Ok(())
    }
}

fn show_device(out: &mut SeqFile, device: &Device) -> fmt::Result {
    let state = device.state();
    if state.conn == api::ConnState::StandAlone
        && state.disk == api::DiskState::Diskless
        && state.role == api::Role::Secondary
    {
        return writeln!(out, "{:2}: cs:Unconfigured", device.minor);
    }
    // The protocol column is blank without a network configuration.
    let protocol = device.io.protocol().map_or(" ", api::WireProtocol::name);
    // The flags: suspended, resync paused by resync-after, by the peer,
    // by the user (pause-sync); congestion and AL suspension not shown.
    let flag = |on: bool, c: char| if on { c } else { '-' };
    writeln!(out, "{:2}: cs:{} ro:{}/{} ds:{}/{} {} {}{}{}{}--",
        device.minor, state.conn.name(), state.role.name(), state.peer.name(),
        state.disk.name(), state.pdsk.name(), protocol,
        if state.susp || state.susp_fen || state.susp_nod { 's' } else { 'r' }, flag(state.aftr_isp, 'a'), flag(state.peer_isp, 'p'),
        flag(state.user_isp, 'u'))?;
    writeln!(out, "    ns:{} nr:{} dw:{} dr:{} al:{} bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:{} oos:{}",
        device.io.net_sent_kib(), device.io.net_received_kib(), device.io.written_sectors() / 2, device.io.read_sectors() / 2,
        device.io.al_transactions(), device.io.write_ordering().proc_char(), device.io.out_of_sync_kib())?;
    use api::ConnState::*;
    // A resync or verify runs over the peer device, present while connected.
    let Some(pd) = device.io.peer_device() else { return Ok(()) };
    match state.conn {
        SyncSource | SyncTarget | PausedSyncS | PausedSyncT => {
            pd.resync.show_progress(out, state.conn, device.io.out_of_sync_bits())?;
        }
        VerifyS | VerifyT => pd.resync.show_progress(out, state.conn, pd.verify.left())?,
        _ => {}
    }
    Ok(())
}
