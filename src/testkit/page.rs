//! One page of shared memory under a segment name, for words that two
//! processes share outside any segment (a count a process about to be
//! killed keeps up to date, the floor of a ping-pong), and the futex calls
//! on such a word.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use crate::endpoint::OpenError;
use crate::platform;
use crate::segment::{SegmentName, SharedMemory};

/// One zero-filled page of shared memory, [`SharedPage::LEN`] bytes, named
/// like a segment (but holding no segment: no header, no lock). Every
/// process that maps it sees the others' stores to its words.
#[derive(Debug)]
pub struct SharedPage {
    shm: SharedMemory,
}

impl SharedPage {
    /// Bytes in the page.
    pub const LEN: usize = 4096;

    /// Creates the page `name` (private to this user), failing if the name
    /// is taken.
    ///
    /// # Errors
    /// [`OpenError::AlreadyExists`] if the name is taken, or the error of
    /// naming, creating or mapping it.
    pub fn create(name: &str) -> Result<SharedPage, OpenError> {
        let shm = SharedMemory::create(&SegmentName::parse(name)?, Self::LEN, 0o600)?;
        Ok(SharedPage { shm })
    }

    /// Maps the existing page `name` of this user.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] if there is none, or the error of naming,
    /// opening or mapping it.
    pub fn open(name: &str) -> Result<SharedPage, OpenError> {
        let shm = SharedMemory::open(&SegmentName::parse(name)?)?;
        if shm.len() < Self::LEN {
            return Err(OpenError::InvalidSegment {
                name: name.to_owned(),
                reason: format!("{} bytes is less than a shared page", shm.len()),
            });
        }
        Ok(SharedPage { shm })
    }

    /// Removes the page's name; the processes that mapped it keep it.
    ///
    /// # Errors
    /// [`OpenError::NotFound`] if the name is gone already, or the error of
    /// the removal.
    pub fn remove(&self) -> Result<(), OpenError> {
        Ok(self.shm.name().remove()?)
    }

    /// The 32-bit word at `offset`.
    ///
    /// # Panics
    /// If `offset` is not a multiple of 4 or the word does not fit in the
    /// page.
    pub fn word32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset % 4 == 0 && offset + 4 <= Self::LEN, "no 32-bit word at {offset}");
        // SAFETY: the word lies inside the mapping (checked above; `open`
        // checked it is a page long), which is page-aligned, so the pointer
        // is 4-aligned; it lives as long as `self.shm`, which the borrow
        // keeps. An AtomicU32 is valid for any bits, and every access to the
        // page, here and in the other processes, goes through atomics.
        unsafe { &*self.shm.base().as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// The 64-bit word at `offset`.
    ///
    /// # Panics
    /// If `offset` is not a multiple of 8 or the word does not fit in the
    /// page.
    pub fn word64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= Self::LEN, "no 64-bit word at {offset}");
        // SAFETY: as in `word32`, with 8-alignment.
        unsafe { &*self.shm.base().as_ptr().add(offset).cast::<AtomicU64>() }
    }
}

/// Sleeps in the kernel while `word` holds `expected`, for at most `timeout`
/// (`None`: no limit). Returns on a wake, a change of the value, a signal or
/// the timeout; the caller looks at the word again. A word in shared memory
/// is woken from other processes too.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    platform::futex_wait(word, expected, timeout);
}

/// Wakes up to `count` sleepers on `word`, in any process (macOS wakes one
/// or all).
pub fn futex_wake(word: &AtomicU32, count: u32) {
    platform::futex_wake(word, count);
}
