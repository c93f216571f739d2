//! Superblock decoding, layout checks and encode/decode round trip.
#![no_main]

use drbd_include::md::{Layout, MetaIndex, Superblock, MD_SUPERBLOCK_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut block = [0u8; MD_SUPERBLOCK_BYTES];
    let n = data.len().min(MD_SUPERBLOCK_BYTES);
    block[..n].copy_from_slice(&data[..n]);
    let raw = Superblock::from_bytes(&block);
    let mut again = [0u8; MD_SUPERBLOCK_BYTES];
    raw.encode(&mut again);
    assert_eq!(Superblock::from_bytes(&again), raw);
    if let Ok(sb) = Superblock::decode(&block) {
        let _ = (sb.is_clean(), sb.bitmap_sectors(), sb.disk_state_name());
        let al = sb.al_geometry().expect("validated");
        let size = data
            .get(4096..4104)
            .map_or(1 << 21, |b| u64::from_le_bytes(b.try_into().unwrap()));
        for index in [
            MetaIndex::FlexInternal,
            MetaIndex::FlexExternal,
            MetaIndex::Indexed(1),
        ] {
            if let Ok(layout) = Layout::compute(index, size, size, al) {
                let _ = sb.check_layout(&layout);
            }
        }
    }
});
