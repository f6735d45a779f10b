//! Bounds checking, panic guards and poison detection: building blocks for
//! code of your own that works on memory shared with other processes (the
//! 0.1.3 API, kept as it was).
//!
//! The crate does not use these types. It applies the same rules where it
//! reads the segment: every index, length and header is validated where it
//! is loaded (the ring's positions and record headers, the segment header on
//! open), a violation is [`ShmError::Corrupted`] (`crate::Error::Corrupted`
//! on the endpoints) and poisons the channel for both sides, and a panic in a
//! zero-copy closure publishes nothing half-written and consumes a message
//! exactly once.
//!
//! ```
//! use memlink_shm::safety::{BoundsChecker, SafeShmAccess};
//!
//! let mut region = vec![0u8; 4096];
//! let (base_ptr, size) = (region.as_mut_ptr(), region.len());
//! let access = SafeShmAccess::new(base_ptr, size);
//! let (offset, len) = (128, 64);
//! access.with_safe_access(offset, len, || {
//!     // Safe operation with bounds checking
//! })?;
//! assert!(access.with_safe_access(4090, 64, || ()).is_err());
//! assert!(access.with_safe_access(0, 8, || panic!("caught")).is_err());
//! assert_eq!(BoundsChecker::new(size).check(offset, len)?, 128..192);
//! # Ok::<(), memlink_shm::ShmError>(())
//! ```

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::compat::{ShmError, ShmResult};

/// Checks `(offset, len)` pairs against a region size, without overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundsChecker {
    size: usize,
}

impl BoundsChecker {
    /// A checker for a region of `size` bytes.
    pub const fn new(size: usize) -> BoundsChecker {
        BoundsChecker { size }
    }

    /// The byte range `offset..offset + len` if it lies inside the region.
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] when the range leaves the region.
    pub fn check(&self, offset: usize, len: usize) -> ShmResult<Range<usize>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(offset..end),
            _ => Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            }),
        }
    }

    /// Like [`BoundsChecker::check`], also requiring `offset` to be a multiple of `align`.
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] when the range leaves the region or `offset`
    /// is not aligned.
    pub fn check_aligned(&self, offset: usize, len: usize, align: usize) -> ShmResult<Range<usize>> {
        if align == 0 || offset % align != 0 {
            return Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.size,
            });
        }
        self.check(offset, len)
    }

    /// Size of the region.
    pub const fn size(&self) -> usize {
        self.size
    }
}

/// A region's address and size: hands out bounds-checked pointers and runs
/// closures under a bounds check and a panic guard. It never dereferences
/// anything itself, so constructing one is safe.
#[derive(Debug, Clone, Copy)]
pub struct SafeShmAccess {
    base: *mut u8,
    bounds: BoundsChecker,
}

impl SafeShmAccess {
    /// Describes the `size` bytes at `base_ptr`.
    pub fn new(base_ptr: *mut u8, size: usize) -> SafeShmAccess {
        SafeShmAccess {
            base: base_ptr,
            bounds: BoundsChecker::new(size),
        }
    }

    /// Runs `f` if `offset..offset + len` lies inside the region; a panic in
    /// `f` is caught and returned as [`ShmError::Panicked`].
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] when the range leaves the region,
    /// [`ShmError::Panicked`] with the message when `f` panics.
    pub fn with_safe_access<R>(&self, offset: usize, len: usize, f: impl FnOnce() -> R) -> ShmResult<R> {
        self.bounds.check(offset, len)?;
        catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            ShmError::Panicked(msg)
        })
    }

    /// The address of `offset` if `offset..offset + len` lies inside the region.
    ///
    /// # Errors
    /// [`ShmError::OutOfBounds`] when the range leaves the region.
    pub fn ptr_at(&self, offset: usize, len: usize) -> ShmResult<*mut u8> {
        let range = self.bounds.check(offset, len)?;
        // wrapping_add keeps the pointer's provenance and is never UB itself.
        Ok(self.base.wrapping_add(range.start))
    }

    /// The bounds of the region.
    pub fn bounds(&self) -> BoundsChecker {
        self.bounds
    }
}

/// A poison flag: set when an operation that protects some state panicked
/// (or found the state corrupt), so later users get an error instead of bad
/// data. It is one 32-bit word, so it can live in shared memory.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct PoisonState(AtomicU32);

impl PoisonState {
    /// A healthy flag.
    pub const fn new() -> PoisonState {
        PoisonState(AtomicU32::new(0))
    }

    /// Whether the flag is set.
    pub fn is_poisoned(&self) -> bool {
        self.0.load(Ordering::Acquire) != 0
    }

    /// Sets the flag.
    pub fn poison(&self) {
        self.0.store(1, Ordering::Release);
    }

    /// Clears the flag, once the protected state has been repaired.
    pub fn clear(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// `Err(Poisoned)` if the flag is set.
    ///
    /// # Errors
    /// [`ShmError::Poisoned`] when the flag is set.
    pub fn check(&self) -> ShmResult<()> {
        if self.is_poisoned() {
            Err(ShmError::Poisoned(
                "a guarded operation panicked or found its state corrupt",
            ))
        } else {
            Ok(())
        }
    }

    /// A guard that poisons the flag if it is dropped while its thread panics.
    pub fn guard(&self) -> PoisonGuard<'_> {
        PoisonGuard {
            flag: self,
            panicking: std::thread::panicking(),
        }
    }
}

/// Poisons its [`PoisonState`] if dropped during a panic that started after
/// the guard was made (like `std::sync::Mutex` poisoning).
///
/// ```
/// use memlink_shm::safety::PoisonState;
/// let state = PoisonState::new();
/// let r = std::panic::catch_unwind(|| {
///     let _guard = state.guard();
///     panic!("halfway through an update");
/// });
/// assert!(r.is_err() && state.is_poisoned());
/// assert!(state.check().is_err());
/// ```
#[derive(Debug)]
pub struct PoisonGuard<'a> {
    flag: &'a PoisonState,
    panicking: bool,
}

impl PoisonGuard<'_> {
    /// Marks the state poisoned now (e.g. after finding it corrupt).
    pub fn poison(&self) {
        self.flag.poison();
    }
}

impl Drop for PoisonGuard<'_> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.flag.poison();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_never_overflow() {
        let b = BoundsChecker::new(100);
        assert_eq!(b.check(0, 100).unwrap(), 0..100);
        assert!(b.check(1, 100).is_err());
        assert!(b.check(usize::MAX, 2).is_err());
        assert!(b.check(100, 0).is_ok());
        assert!(b.check(101, 0).is_err());
        assert!(b.check_aligned(3, 1, 4).is_err());
        assert!(b.check_aligned(4, 1, 0).is_err());
    }

    #[test]
    fn guard_does_not_poison_on_normal_exit() {
        let s = PoisonState::new();
        drop(s.guard());
        assert!(!s.is_poisoned());
        s.guard().poison();
        assert!(s.is_poisoned());
        s.clear();
        assert!(s.check().is_ok());
    }

    #[test]
    fn access_reports_panics_and_bounds() {
        let a = SafeShmAccess::new(std::ptr::null_mut(), 64);
        assert!(matches!(
            a.with_safe_access(0, 65, || ()),
            Err(ShmError::OutOfBounds { .. })
        ));
        assert!(matches!(a.with_safe_access(0, 1, || panic!("x")), Err(ShmError::Panicked(m)) if m == "x"));
        assert_eq!(a.ptr_at(8, 8).unwrap() as usize, 8);
    }
}
