//! Activity log transaction decoding and ring replay.
#![no_main]

use drbd_include::al::{replay, AlGeometry, Transaction, AL_TRANSACTION_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks_exact(AL_TRANSACTION_BYTES) {
        if let Ok(tr) = Transaction::decode(chunk.try_into().unwrap()) {
            let _ = tr.header();
            let _ = tr.assignments().count();
        }
    }
    let blocks = (data.len() / AL_TRANSACTION_BYTES) as u32;
    if let Some(g) = AlGeometry::new(1, blocks) {
        let mut slots = vec![0u32; 4096];
        let _ = replay(&data[..g.size_bytes() as usize], &g, &mut slots);
    }
});
