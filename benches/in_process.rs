//! In-process benches: SPSC ring throughput between two threads, and the
//! cost of priority routing (three rings and a scan) against one ring.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlink_shm::buffer::RingBuffer;
use memlink_shm::pring::PriorityRingBuffer;
use memlink_shm::priority::Priority;

fn spsc_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_in_process");
    for size in [64usize, 256, 1024] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| {
                let (mut tx, mut rx) = RingBuffer::with_capacity(1 << 20, 4096).unwrap().split();
                let payload = vec![1u8; size];
                let sink = std::thread::spawn(move || {
                    let mut n = 0u64;
                    let mut sum = 0usize;
                    while n < iters {
                        match rx.read_with(|_, b| b.len()) {
                            Ok(Some(len)) => {
                                sum += len;
                                n += 1;
                            }
                            _ => std::hint::spin_loop(),
                        }
                    }
                    black_box(sum);
                });
                let t0 = Instant::now();
                for _ in 0..iters {
                    while tx.write(Priority::High, &payload).is_err() {
                        std::hint::spin_loop();
                    }
                }
                sink.join().unwrap();
                t0.elapsed()
            })
        });
    }
    g.finish();
}

/// One thread writes then reads 64 B: the instruction cost of the routing.
fn priority_routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("priority_routing_64B");
    g.throughput(Throughput::Elements(1));
    let payload = [7u8; 64];
    g.bench_function("single_ring", |b| {
        let rb = RingBuffer::with_capacity(1 << 16, 4096).unwrap();
        b.iter(|| {
            rb.write_slot(Priority::High, &payload).unwrap();
            black_box(rb.read_with(|_, m| m.len()).unwrap())
        })
    });
    g.bench_function("priority_ring", |b| {
        let prb = PriorityRingBuffer::with_capacity(1 << 16, 4096).unwrap();
        b.iter(|| {
            prb.write(Priority::High, &payload).unwrap();
            black_box(prb.read_with(|_, m| m.len()).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = spsc_threads, priority_routing
}
criterion_main!(benches);
