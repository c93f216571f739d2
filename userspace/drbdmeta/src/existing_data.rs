//! drbdmeta's guard against creating metadata over something in use:
//! look at the first 68 KiB of the device for file system and other
//! signatures, estimate how much space they claim, and refuse or ask.

/// drbdmeta reads this much: the reiserfs superblock is at 64 KiB.
pub const SCAN_BYTES: usize = 68 * 1024;

/// How much of the device a signature claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Unrecognized non-zero data: size unknown.
    Unknown,
    /// A file system of this many bytes.
    Bytes(u64),
    /// Always refuse (swap, or a size we could not determine).
    Refuse,
    /// Refuse: the size could not be determined (LVM2 physical volume).
    RefuseUnknownSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub what: &'static str,
    pub claim: Claim,
}

fn le16(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 2)
        .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])))
}

fn le32(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
}

fn le64(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn be32(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u64::from(u32::from_be_bytes(b)))
}

fn be64(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn has(d: &[u8], at: usize, text: &[u8]) -> bool {
    d.get(at..at + text.len()) == Some(text)
}

/// What the start of a device holds; `None` if it is all zeros.
pub fn scan(data: &[u8]) -> Option<Found> {
    if data.iter().all(|&b| b == 0) {
        return None;
    }
    let swap = [4096 - 10, 8192 - 10]
        .iter()
        .any(|&at| has(data, at, b"SWAP-SPACE") || has(data, at, b"SWAPSPACE2"));
    let found = |what, claim| Some(Found { what, claim });
    if swap {
        return found("swap space signature", Claim::Refuse);
    }
    if has(data, 0x218, b"LVM2") {
        return found("LVM2 physical volume signature", Claim::RefuseUnknownSize);
    }
    if le16(data, 0x438) == 0xef53 {
        // drbdmeta tests the journal bit of the low byte only; ext4 has a
        // journal too and is reported as ext3.
        let what = if data.get(0x45c).is_some_and(|b| b & 4 != 0) {
            "ext3 filesystem"
        } else {
            "ext2 filesystem"
        };
        let block = match le32(data, 0x418) {
            0 => 1024,
            1 => 2048,
            _ => 4096,
        };
        return found(what, Claim::Bytes(le32(data, 0x404).saturating_mul(block)));
    }
    if be32(data, 0) == 0x5846_5342 {
        return found(
            "xfs filesystem",
            Claim::Bytes(be32(data, 4).saturating_mul(be64(data, 8))),
        );
    }
    if has(data, 0x8000, b"JFS1") {
        return found(
            "JFS filesystem",
            Claim::Bytes(le64(data, 0x8008).saturating_mul(le32(data, 0x8018))),
        );
    }
    if has(data, 0x10034, b"ReIsErFs") || has(data, 0x10034, b"ReIsEr2Fs") {
        return found(
            "reiser filesystem",
            Claim::Bytes(le32(data, 0x10000).saturating_mul(le16(data, 0x1002c))),
        );
    }
    found("some data", Claim::Unknown)
}

/// What to do about what [`scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refuse outright (exit 40) unless --ignore-sanity-checks.
    Refuse,
    /// Ask for confirmation.
    Ask,
}

/// drbdmeta's decision: any file system under external metadata would be
/// overwritten; under internal metadata it must fit in what stays usable.
pub fn verdict(found: &Found, external: bool, usable_kb: u64) -> Verdict {
    match found.claim {
        Claim::Unknown => Verdict::Ask,
        Claim::Refuse | Claim::RefuseUnknownSize => Verdict::Refuse,
        Claim::Bytes(_) if external => Verdict::Refuse,
        Claim::Bytes(bytes) if bytes.div_ceil(1024) > usable_kb => Verdict::Refuse,
        Claim::Bytes(_) => Verdict::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(blocks: u32, log: u32, journal: bool) -> Vec<u8> {
        let mut d = vec![0u8; SCAN_BYTES];
        d[0x438..0x43a].copy_from_slice(&0xef53u16.to_le_bytes());
        d[0x404..0x408].copy_from_slice(&blocks.to_le_bytes());
        d[0x418..0x41c].copy_from_slice(&log.to_le_bytes());
        d[0x45c] = if journal { 4 } else { 0 };
        d
    }

    #[test]
    fn recognizes_signatures() {
        assert_eq!(scan(&vec![0; SCAN_BYTES]), None);
        let f = scan(&ext(1000, 2, true)).unwrap();
        assert_eq!(
            f,
            Found {
                what: "ext3 filesystem",
                claim: Claim::Bytes(4_096_000)
            }
        );
        assert_eq!(
            scan(&ext(10, 0, false)).unwrap().claim,
            Claim::Bytes(10_240)
        );
        let mut d = vec![0u8; SCAN_BYTES];
        d[4086..4096].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(scan(&d).unwrap().claim, Claim::Refuse);
        let mut d = vec![0u8; SCAN_BYTES];
        d[0..4].copy_from_slice(b"XFSB");
        d[4..8].copy_from_slice(&4096u32.to_be_bytes());
        d[8..16].copy_from_slice(&100u64.to_be_bytes());
        assert_eq!(
            scan(&d).unwrap(),
            Found {
                what: "xfs filesystem",
                claim: Claim::Bytes(409_600)
            }
        );
        let mut d = vec![0u8; SCAN_BYTES];
        d[0x10034..0x1003c].copy_from_slice(b"ReIsErFs");
        assert_eq!(scan(&d).unwrap().what, "reiser filesystem");
        let mut d = vec![0u8; SCAN_BYTES];
        d[77] = 1;
        assert_eq!(
            scan(&d).unwrap(),
            Found {
                what: "some data",
                claim: Claim::Unknown
            }
        );
        // Short buffers do not panic.
        assert!(scan(&[1, 2, 3]).is_some());
    }

    #[test]
    fn decides_like_drbdmeta() {
        let fs = Found {
            what: "ext3 filesystem",
            claim: Claim::Bytes(60 << 20),
        };
        assert_eq!(verdict(&fs, false, 65_496), Verdict::Ask);
        assert_eq!(verdict(&fs, false, 60 * 1024 - 1), Verdict::Refuse);
        assert_eq!(verdict(&fs, true, u64::MAX), Verdict::Refuse);
        let data = Found {
            what: "some data",
            claim: Claim::Unknown,
        };
        assert_eq!(verdict(&data, true, 0), Verdict::Ask);
    }
}
