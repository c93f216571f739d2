//! A peer's compressed bitmap packet payload decoded into a bitmap.
#![no_main]

use drbd_include::bitmap_rle::{decode_rle, WordBitmap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&start, payload)) = data.split_first() else { return };
    let mut words = [0u64; 64];
    let bits = 64 * 64;
    if let Some(mut bitmap) = WordBitmap::new(&mut words, bits) {
        let _ = decode_rle(payload, u64::from(start) * 13, bits, &mut bitmap);
    }
});
