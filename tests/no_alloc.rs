//! The zero-copy path allocates nothing per message: a counting global
//! allocator watches write_with / read_with / batches on both sides.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memlink_shm::priority::Priority;
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use support::{unique_name, SegmentGuard};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn zero_copy_messaging_does_not_allocate() {
    let name = unique_name("noalloc");
    let _g = SegmentGuard(name.clone());
    let daemon = NrelayShmTransport::builder(&name)
        .size(4 << 20)
        .max_clients(2)
        .create()
        .unwrap();
    let client = NrelayShmTransport::connect(&name, 1).unwrap();
    let id = client.client_id().unwrap();
    let round = |i: u64| {
        let p = Priority::ALL[(i % 3) as usize];
        client
            .write_with(p, 64, |b| b[..8].copy_from_slice(&i.to_le_bytes()))
            .unwrap();
        client.signal();
        daemon
            .read_from_with(|from, _, b| daemon.write_to_with(from, p, b.len(), |out| out.copy_from_slice(b)))
            .unwrap()
            .unwrap()
            .unwrap();
        daemon.signal();
        client
            .read_with(|_, b| assert_eq!(&b[..8], &i.to_le_bytes()))
            .unwrap()
            .unwrap();
        client
            .write_batch(|batch| {
                for k in 0..8 {
                    batch.write_with(Priority::High, 32, |b| b.fill(k)).unwrap();
                }
            })
            .unwrap();
        assert_eq!(
            daemon
                .read_from_batch_with(64, |_, _, b| assert_eq!(b.len(), 32))
                .unwrap(),
            8
        );
        daemon
            .write_to_batch(id, |batch| batch.write(Priority::Low, &[1; 16]).unwrap())
            .unwrap();
        assert_eq!(client.read_batch_with(64, |_, b| assert_eq!(b, [1; 16])).unwrap(), 1);
        assert!(client.read_with(|_, _| ()).unwrap().is_none());
        assert!(daemon.read_with(|_, _| ()).unwrap().is_none());
    };
    for i in 0..1000 {
        round(i); // warm-up: first uses may size internal buffers
    }
    COUNTING.store(true, Ordering::SeqCst);
    for i in 1000..101_000 {
        round(i);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let n = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(n, 0, "{n} allocations in 100,000 rounds of zero-copy messaging");
}
