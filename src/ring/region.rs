//! Zeroed, 128-byte-aligned heap memory for rings that live in one process.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

use crate::segment::layout::LINE;

/// An owned, zero-filled allocation aligned to [`LINE`]. Accessed only
/// through raw pointers (rings hold `base()`), never through references.
#[derive(Debug)]
pub(crate) struct HeapRegion {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: HeapRegion is a uniquely owned allocation; the rings that write
// through its pointer synchronise with atomics, and it is only freed on drop.
unsafe impl Send for HeapRegion {}
// SAFETY: &HeapRegion exposes nothing but the address.
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// Allocates `size` zeroed bytes (at least one line).
    pub(crate) fn zeroed(size: usize) -> HeapRegion {
        let layout = Layout::from_size_align(size.max(LINE), LINE).expect("ring size overflows a Layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        HeapRegion { base, layout }
    }

    /// Start of the region.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with exactly this layout, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) }
    }
}
