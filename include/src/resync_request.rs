//! How big the SyncTarget's resync requests are (8.4's
//! `make_resync_request`): a run of consecutive out-of-sync 4 KiB blocks,
//! up to the largest block the peer takes, never crossing a boundary of
//! that size, so that a request lies within one activity-log extent and
//! the SyncSource's read of it is one aligned I/O.

use super::protocol::MAX_BIO_SIZE;

/// Bytes of one bitmap bit.
const BLOCK_BYTES: u32 = 4096;

/// The largest request for a peer that takes blocks of up to
/// `peer_max_bio` bytes (its P_SIZES `max_bio_size`, already capped by the
/// protocol version; 0 when it did not say): whole blocks, at least one,
/// at most `DRBD_MAX_BIO_SIZE`.
pub fn request_bytes(peer_max_bio: u32) -> u32 {
    let max = if peer_max_bio == 0 { MAX_BIO_SIZE } else { peer_max_bio.min(MAX_BIO_SIZE) };
    (max & !(BLOCK_BYTES - 1)).max(BLOCK_BYTES)
}

/// The bit after the request that starts at out-of-sync bit `first`:
/// consecutive bits for which `is_set` holds, at most `max_bits` of them,
/// not past `bits` (the bitmap's size) and not past the next multiple of
/// `max_bits`.
pub fn request_end(first: u64, bits: u64, max_bits: u64, is_set: impl Fn(u64) -> bool) -> u64 {
    let max_bits = max_bits.max(1);
    let boundary = (first / max_bits).saturating_add(1).saturating_mul(max_bits).min(bits);
    let mut end = first.saturating_add(1);
    while end < boundary && is_set(end) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_follow_the_peer() {
        assert_eq!(request_bytes(0), 1 << 20);
        assert_eq!(request_bytes(1 << 20), 1 << 20);
        assert_eq!(request_bytes(8 << 20), 1 << 20);
        assert_eq!(request_bytes(128 << 10), 128 << 10);
        assert_eq!(request_bytes(32 << 10), 32 << 10);
        // Not whole blocks, or less than one: rounded to whole blocks.
        assert_eq!(request_bytes(130_000), 126_976);
        assert_eq!(request_bytes(512), 4096);
        assert_eq!(request_bytes(1), 4096);
    }

    #[test]
    fn a_request_is_a_run_of_set_bits() {
        let set = |b: u64| (10..20).contains(&b) || (300..700).contains(&b);
        assert_eq!(request_end(10, 1000, 256, set), 20);
        assert_eq!(request_end(15, 1000, 256, set), 20);
        assert_eq!(request_end(10, 1000, 4, set), 12);
    }

    #[test]
    fn a_request_stops_at_its_size_boundary() {
        let all = |_: u64| true;
        // From bit 300 (not aligned): up to the boundary at 512.
        assert_eq!(request_end(300, 1000, 256, all), 512);
        assert_eq!(request_end(512, 1000, 256, all), 768);
        assert_eq!(request_end(0, 1000, 256, all), 256);
        // The bitmap's end.
        assert_eq!(request_end(900, 1000, 256, all), 1000);
        assert_eq!(request_end(999, 1000, 256, all), 1000);
    }

    #[test]
    fn a_request_has_at_least_its_first_bit() {
        let none = |_: u64| false;
        assert_eq!(request_end(7, 1000, 256, none), 8);
        assert_eq!(request_end(7, 1000, 0, |_| true), 8);
        assert_eq!(request_end(u64::MAX - 1, u64::MAX, 256, |_| true), u64::MAX);
    }
}
