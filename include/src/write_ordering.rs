//! How the Secondary keeps an epoch's writes before the next epoch's on
//! stable storage (8.4's `write_ordering`, chosen by `max_allowed_wo` from
//! the disk options): at a P_BARRIER it waits for the epoch's writes
//! (drain) and then flushes the backing disk (flush); `disk-flushes no`
//! leaves the drain, `disk-drain no` too leaves nothing (the disk's own
//! order, for a battery-backed cache that keeps it). `disk-barrier` is
//! accepted and, as in the in-tree 8.4 driver (which dropped the barrier
//! method), chooses nothing.

/// The write-ordering method, weakest first (`enum write_ordering_e`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum WriteOrdering {
    /// Neither drain nor flush.
    None = 0,
    /// Wait for the epoch's writes.
    Drain = 1,
    /// Wait for them, then flush the backing disk.
    Flush = 2,
}

impl WriteOrdering {
    /// The method the disk options allow (`max_allowed_wo` from flush).
    pub fn from_options(disk_flushes: bool, disk_drain: bool) -> Self {
        match (disk_flushes, disk_drain) {
            (true, _) => Self::Flush,
            (false, true) => Self::Drain,
            (false, false) => Self::None,
        }
    }

    /// From its `repr(u8)` value.
    pub fn from_raw(raw: u8) -> Option<Self> {
        [Self::None, Self::Drain, Self::Flush].into_iter().find(|w| *w as u8 == raw)
    }

    /// Its letter after `wo:` in `/proc/drbd`.
    pub fn proc_char(self) -> char {
        match self {
            Self::None => 'n',
            Self::Drain => 'd',
            Self::Flush => 'f',
        }
    }

    /// Its name in 8.4's "Method to ensure write ordering" line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Drain => "drain",
            Self::Flush => "flush",
        }
    }

    /// Whether a barrier waits for the epoch's writes.
    pub fn drains(self) -> bool {
        self >= Self::Drain
    }

    /// Whether a barrier flushes the backing disk.
    pub fn flushes(self) -> bool {
        self == Self::Flush
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_choose_as_max_allowed_wo() {
        assert_eq!(WriteOrdering::from_options(true, true), WriteOrdering::Flush);
        assert_eq!(WriteOrdering::from_options(true, false), WriteOrdering::Flush);
        assert_eq!(WriteOrdering::from_options(false, true), WriteOrdering::Drain);
        assert_eq!(WriteOrdering::from_options(false, false), WriteOrdering::None);
    }

    #[test]
    fn letters_and_names_are_8_4_s() {
        let all = [WriteOrdering::None, WriteOrdering::Drain, WriteOrdering::Flush];
        assert_eq!(all.map(WriteOrdering::proc_char), ['n', 'd', 'f']);
        assert_eq!(all.map(WriteOrdering::name), ["none", "drain", "flush"]);
        for w in all {
            assert_eq!(WriteOrdering::from_raw(w as u8), Some(w));
        }
        assert_eq!(WriteOrdering::from_raw(3), None);
        assert!(WriteOrdering::Flush.drains() && WriteOrdering::Flush.flushes());
        assert!(WriteOrdering::Drain.drains() && !WriteOrdering::Drain.flushes());
        assert!(!WriteOrdering::None.drains() && !WriteOrdering::None.flushes());
    }
}
