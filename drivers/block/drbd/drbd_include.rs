//! The `no_std` sources shared with the userspace tools (`include/src/`),
//! compiled into the module. Not every item is used by the kernel side.

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/nla.rs"]
pub(crate) mod nla;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/genl.rs"]
pub(crate) mod genl;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/fixed_str.rs"]
pub(crate) mod fixed_str;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/md.rs"]
pub(crate) mod md;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/al.rs"]
pub(crate) mod al;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/bitmap.rs"]
pub(crate) mod bitmap;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/al_set.rs"]
pub(crate) mod al_set;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/be.rs"]
pub(crate) mod be;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/protocol.rs"]
pub(crate) mod protocol;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/wire.rs"]
pub(crate) mod wire;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/uuid.rs"]
pub(crate) mod uuid;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/bitmap_rle.rs"]
pub(crate) mod bitmap_rle;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/events2.rs"]
pub(crate) mod events2;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/net_options.rs"]
pub(crate) mod net_options;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/mgmt.rs"]
pub(crate) mod mgmt;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/transfer_log.rs"]
pub(crate) mod transfer_log;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/ack_slots.rs"]
pub(crate) mod ack_slots;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/send_fifo.rs"]
pub(crate) mod send_fifo;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/write_ordering.rs"]
pub(crate) mod write_ordering;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/peer_epochs.rs"]
pub(crate) mod peer_epochs;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/resync_request.rs"]
pub(crate) mod resync_request;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/resync_throttle.rs"]
pub(crate) mod resync_throttle;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/disk_timeout.rs"]
pub(crate) mod disk_timeout;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/request_timer.rs"]
pub(crate) mod request_timer;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/protocol_settings.rs"]
pub(crate) mod protocol_settings;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/csums.rs"]
pub(crate) mod csums;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/io_error.rs"]
pub(crate) mod io_error;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/read_balancing.rs"]
pub(crate) mod read_balancing;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/faults.rs"]
pub(crate) mod faults;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/state.rs"]
pub(crate) mod state;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/congestion.rs"]
pub(crate) mod congestion;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/resync_after.rs"]
pub(crate) mod resync_after;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/write_conflicts.rs"]
pub(crate) mod write_conflicts;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/discard.rs"]
pub(crate) mod discard;
