//! Fault injection with DRBD 8.4's module parameters: `enable_faults` (a
//! bit per [`Fault`]), `fault_rate` (percent of the candidate requests),
//! `fault_devs` (a bit per minor; 0: every minor). Off unless `fault_rate`
//! and a bit of `enable_faults` are set. Used to test the failure paths.

/// What can be made to fail (`DRBD_FAULT_*`, the bit numbers of
/// `enable_faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    /// A metadata write (superblock, activity log, bitmap).
    MetaWrite = 0,
    /// A metadata read.
    MetaRead = 1,
    /// A resync write (SyncTarget).
    ResyncWrite = 2,
    /// A resync read (SyncSource).
    ResyncRead = 3,
    /// A data write: an application's, or a replicated one on the peer.
    DataWrite = 4,
    /// A data read: an application's, or one served to a diskless peer.
    DataRead = 5,
    /// A read-ahead.
    DataReadAhead = 6,
    /// The bitmap's allocation at attach.
    BitmapAlloc = 7,
    /// A peer request's allocation (a received write cannot be taken in).
    PeerRequestAlloc = 8,
    /// A received data block is corrupted (for data-integrity-alg).
    Receive = 9,
}

impl Fault {
    /// The name 8.4 logs ("***Simulating %s failure").
    pub fn name(self) -> &'static str {
        match self {
            Self::MetaWrite => "Meta-data write",
            Self::MetaRead => "Meta-data read",
            Self::ResyncWrite => "Resync write",
            Self::ResyncRead => "Resync read",
            Self::DataWrite => "Data write",
            Self::DataRead => "Data read",
            Self::DataReadAhead => "Data read ahead",
            Self::BitmapAlloc => "BM allocation",
            Self::PeerRequestAlloc => "EE allocation",
            Self::Receive => "receive data corruption",
        }
    }
}

/// The module parameters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultParams {
    /// `enable_faults`.
    pub enable: u32,
    /// `fault_rate`, percent.
    pub rate: u32,
    /// `fault_devs`.
    pub devs: u32,
}

impl FaultParams {
    /// Whether `fault` applies to `minor` at all (`drbd_insert_fault`'s
    /// cheap part, before the random draw).
    pub fn armed(&self, fault: Fault, minor: u32) -> bool {
        let bit = |mask: u32, n: u32| n < 32 && mask & (1 << n) != 0;
        self.rate != 0 && bit(self.enable, fault as u32) && (self.devs == 0 || bit(self.devs, minor))
    }

    /// Whether to simulate `fault` on `minor` with the random draw `random`
    /// (`_drbd_insert_fault`: `random % 100 + 1 <= fault_rate`).
    pub fn inject(&self, fault: Fault, minor: u32, random: u32) -> bool {
        self.armed(fault, minor) && random % 100 < self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_a_rate_and_the_fault_are_set() {
        let p = FaultParams { enable: 1 << 4, rate: 0, devs: 0 };
        assert!(!p.inject(Fault::DataWrite, 0, 0));
        let p = FaultParams { rate: 100, ..p };
        assert!(p.inject(Fault::DataWrite, 0, 99));
        assert!(!p.inject(Fault::DataRead, 0, 0));
    }

    #[test]
    fn the_rate_is_a_percentage_of_draws() {
        let p = FaultParams { enable: !0, rate: 10, devs: 0 };
        let hits = (0..1000u32).filter(|&r| p.inject(Fault::ResyncRead, 3, r)).count();
        assert_eq!(hits, 100);
    }

    #[test]
    fn fault_devs_selects_minors() {
        let p = FaultParams { enable: 1, rate: 100, devs: 0b100 };
        assert!(p.inject(Fault::MetaWrite, 2, 0));
        assert!(!p.inject(Fault::MetaWrite, 1, 0));
        // Minors past the mask's 32 bits are never selected.
        assert!(!p.inject(Fault::MetaWrite, 40, 0));
        assert!(FaultParams { devs: 0, ..p }.inject(Fault::MetaWrite, 40, 0));
    }

    #[test]
    fn names_are_8_4s() {
        assert_eq!(Fault::PeerRequestAlloc.name(), "EE allocation");
        assert_eq!(Fault::Receive as u32, 9);
    }
}
