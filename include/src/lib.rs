//! Shared definitions of rdrbd, a Rust implementation of DRBD 8.4.
//!
//! `nla` is a netlink attribute codec and `genl` is DRBD 8.4's generic
//! netlink API (family "drbd", version 1) built on it. `md`, `al` and
//! `bitmap` are the v08 on-disk metadata: superblock and layout, activity
//! log, out-of-sync bitmap. All are plain `core` code without allocation:
//! the kernel module includes the files as sibling modules with `#[path]`,
//! the userspace tools use this crate.
#![no_std]
#![forbid(unsafe_code)]

/// Netlink attribute parsing and encoding over byte slices.
pub mod nla;

/// DRBD 8.4 generic netlink commands, attributes, codes and codecs.
pub mod genl;

/// Bounded NUL-terminated strings (resource names, device paths).
pub mod fixed_str;

/// v08 on-disk metadata: layout on the meta device and the superblock.
pub mod md;

/// The activity log: ring geometry, CRC-32C, transactions, replay.
pub mod al;

/// The out-of-sync bitmap over caller-provided words.
pub mod bitmap;

/// The activity log's in-memory active set (LRU of hot extents).
pub mod al_set;

/// DRBD 8.4 wire protocol: headers, command codes, payload codecs.
pub mod protocol;

/// Big-endian cursors for the wire protocol's payloads.
mod wire;

/// Bitmap transfer: plain chunks and the RLE/VLI compressed code.
pub mod bitmap_rle;

/// UUID comparison (resync decision) and UUID updates.
pub mod uuid;

/// The state rules of the management commands (invalidate, pause-sync,
/// verify, resize) and their cluster-wide state change requests.
pub mod mgmt;

/// The Primary's transfer log: epochs, barriers and their acks.
pub mod transfer_log;

/// Replicated writes waiting for the peer's per-write ack.
pub mod ack_slots;

/// Writes queued for the connection's sender thread.
pub mod send_fifo;

/// The Secondary's write-ordering method at barriers (disk-flushes, disk-drain).
pub mod write_ordering;

/// The Secondary's epochs whose barrier ack is owed.
pub mod peer_epochs;

/// The size of resync requests.
pub mod resync_request;

/// c-min-rate: the resync steps aside for application I/O.
pub mod resync_throttle;

/// Big-endian fields of on-disk blocks.
mod be;

#[cfg(test)]
mod test_rng;

/// events2: which notifications a state change produces.
pub mod events2;

/// Which net option changes a configured connection accepts.
pub mod net_options;

/// The request timer and ko-count: when a peer that still pings has
/// stopped finishing writes.
pub mod request_timer;

/// The settings both peers agree on (protocol, after-sb, two primaries,
/// data-integrity-alg) and P_PROTOCOL_UPDATE.
pub mod protocol_settings;

/// `read-balancing`: which reads the peer serves though our disk could.
pub mod read_balancing;
/// Checksum-based resync (csums-alg): agreement, answers, counters.
pub mod csums;

/// Local I/O errors (`on-io-error`) and where a read is served from.
pub mod io_error;

/// Fault injection: 8.4's `enable_faults`, `fault_rate`, `fault_devs`.
pub mod faults;

/// `disk-timeout`: requests in flight counted by age, late ones detach.
pub mod disk_timeout;

/// The state engine's rules: valid states and transitions, implied
/// changes, the log line of a change.
pub mod state;

/// `on-congestion`: Ahead/Behind and when a Primary pulls ahead.
pub mod congestion;

/// `resync-after`: which minors' resyncs wait for which.
pub mod resync_after;

/// How a discard reaches the backing disk: whole chunks discarded, the
/// partial ones at its edges zeroed.
pub mod discard;

/// Writes in flight by the sectors they cover: overlapping writes wait,
/// and two Primaries' concurrent writes are resolved (8.4's conflicts).
pub mod write_conflicts;
