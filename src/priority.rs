//! The three priority tiers and how they share a channel's space.

use std::fmt;

/// Message priority. Readers drain every `Critical` message before any `High`
/// one, and every `High` before any `Low`; order within a tier is FIFO.
///
/// Each tier has its own ring, sized as a share of the space: Critical 20 %,
/// High 50 %, Low 30 % (see [`Priority::share_percent`]).
///
/// ```
/// use memlink_shm::priority::Priority;
/// assert!(Priority::Critical < Priority::High && Priority::High < Priority::Low);
/// assert_eq!(Priority::ALL.iter().map(|p| p.share_percent()).sum::<u32>(), 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Priority {
    /// Time-sensitive control messages; read first.
    Critical = 0,
    /// Ordinary traffic.
    High = 1,
    /// Background work, logging, telemetry; read last.
    Low = 2,
}

impl Priority {
    /// All tiers, in the order readers serve them.
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::High, Priority::Low];

    /// Index of the tier (0 = Critical, 1 = High, 2 = Low).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The tier with this index, if any.
    #[inline]
    pub const fn from_index(index: usize) -> Option<Priority> {
        match index {
            0 => Some(Priority::Critical),
            1 => Some(Priority::High),
            2 => Some(Priority::Low),
            _ => None,
        }
    }

    /// Percentage of a channel's ring space this tier receives.
    pub const fn share_percent(self) -> u32 {
        match self {
            Priority::Critical => 20,
            Priority::High => 50,
            Priority::Low => 30,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Low => "low",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_index(p.index()), Some(p));
        }
        assert_eq!(Priority::from_index(3), None);
    }
}
