//! A peer's packet as the receiver handles it: header, size limits, body,
//! under any negotiated protocol version and feature set.
#![no_main]

use drbd_include::protocol::{decode_body, Header, Link};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&version, rest)) = data.split_first() else { return };
    let Some((&features, rest)) = rest.split_first() else { return };
    let link = Link { version: 80 + u32::from(version % 22), features: u32::from(features & 0x1f) };
    let Ok(header) = Header::decode(link, rest) else { return };
    let body = rest.get(link.header_size()..).unwrap_or(&[]);
    let _ = decode_body(header.cmd, link, body);
});
