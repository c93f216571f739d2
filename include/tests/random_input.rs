//! Every decoder of the crate fed with random bytes, in the spirit of the
//! cargo-fuzz targets in `fuzz/` but runnable with plain `cargo test`:
//! none may panic, whatever the input.

#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]

use drbd_include::{al, bitmap, genl, md};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|b| *b = self.next() as u8);
    }
}

#[test]
fn genl_parsers_survive_random_input() {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut buf = vec![0u8; 512];
    for round in 0..20_000 {
        let len = (rng.next() % 512) as usize;
        rng.fill(&mut buf[..len]);
        if round % 3 == 0 && len >= 12 {
            // A plausible attribute header, so parsing gets past the first nla.
            let nla_len = (rng.next() % (len as u64 - 8) + 4) as u16;
            buf[8..10].copy_from_slice(&nla_len.to_ne_bytes());
        }
        let payload = &buf[..len];
        if let Ok(req) = genl::parse_request(payload) {
            let _ = (req.minor(), req.set_defaults(), req.cfg_context_raw());
            let _ = req.cfg_context();
            let _ = req.disk_conf();
            let _ = req.resource_opts(genl::ResourceOpts::default());
            let _ = req.detach_parms();
            let _ = req.set_role_parms();
            let _ = req.disconnect_parms();
        }
        let _ = genl::parse_reply(payload);
    }
}

#[test]
fn metadata_decoders_survive_random_input() {
    let mut rng = XorShift(0xfeed_f00d_0bad_cafe);
    let mut block = [0u8; 4096];
    for round in 0..3000 {
        rng.fill(&mut block);
        if round % 2 == 0 {
            block[60..64].copy_from_slice(&md::DRBD_MD_MAGIC_08.to_be_bytes());
            block[0..4].copy_from_slice(&al::DRBD_AL_MAGIC.to_be_bytes());
            let crc = al::transaction_crc(&block);
            block[8..12].copy_from_slice(&crc.to_be_bytes());
        }
        if let Ok(sb) = md::Superblock::decode(&block) {
            let _ = (
                sb.al_geometry(),
                sb.is_clean(),
                sb.bitmap_sectors(),
                sb.disk_state_name(),
            );
        }
        if let Ok(tr) = al::Transaction::decode(&block) {
            let _ = tr.header();
            let _ = tr.assignments().count();
        }
        let index = md::MetaIndex::from_raw(rng.next() as i32 % 8 - 4);
        if let (Ok(index), Some(g)) = (
            index,
            al::AlGeometry::new(rng.next() as u32 % 9, rng.next() as u32 % 20),
        ) {
            let _ = md::Layout::compute(
                index,
                rng.next() >> (rng.next() % 64),
                rng.next() >> (rng.next() % 64),
                g,
            );
        }
    }
    let g = al::AlGeometry::new(3, 3).unwrap();
    let mut ring = vec![0u8; g.size_bytes() as usize];
    let mut slots = vec![0u32; 1000];
    for _ in 0..100 {
        rng.fill(&mut ring);
        let _ = al::replay(&ring, &g, &mut slots);
    }
    let mut words = vec![0u64; 64];
    for _ in 0..1000 {
        let mut bytes = vec![0u8; (rng.next() % 700) as usize];
        rng.fill(&mut bytes);
        let mut bm = bitmap::Bitmap::new(&mut words, rng.next() % 32768).unwrap();
        bm.load_le((rng.next() % 80) as usize, &bytes);
        bm.clear_surplus();
        assert!(bm.count() <= bm.bits());
    }
}
