//! Waiting costs no CPU: a daemon blocked in `wait(None)` sleeps in the kernel.
// Exercises the 0.1.3 layer, including its deprecated 0.2 additions.
#![allow(deprecated)]

mod support;

use std::time::{Duration, Instant};

use memlink_shm::priority::Priority;
use memlink_shm::testkit::{Peer, WakeWord};
use memlink_shm::transport::{NrelayShmTransport, ShmTransport};
use support::{unique_name, watchdog, Children, SegmentGuard};

/// CPU time this thread has used.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time this thread has used.
#[cfg(target_os = "macos")]
fn thread_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time this thread has used (kernel plus user).
#[cfg(windows)]
fn thread_cpu() -> Duration {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut a, mut b, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the pseudo-handle of the current thread is always valid; the
    // four out pointers are valid, writable FILETIMEs.
    unsafe { GetThreadTimes(GetCurrentThread(), &mut a, &mut b, &mut kernel, &mut user) };
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Duration::from_nanos((ticks(kernel) + ticks(user)) * 100)
}

#[test]
fn daemon_blocked_in_wait_uses_no_cpu() {
    let name = unique_name("idle");
    let _guard = SegmentGuard(name.clone());
    let _w = watchdog(Duration::from_secs(60), &Children::default(), &[&name]);
    let daemon_name = name.clone();
    let daemon = NrelayShmTransport::create(&daemon_name, 1 << 20, 1).unwrap();
    let client = NrelayShmTransport::connect(&name, 1).unwrap();
    let waiter = std::thread::spawn(move || {
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        daemon.wait(None).unwrap();
        let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
        assert_eq!(daemon.read().unwrap().1, b"wake up");
        (cpu, wall)
    });
    let peer = Peer::open(&name).unwrap();
    while peer.waiters(WakeWord::Daemon) == 0 {
        std::thread::yield_now();
    }
    // Let the daemon sit idle for a while: this is the period being measured.
    std::thread::sleep(Duration::from_millis(400));
    client.send(Priority::High, b"wake up").unwrap();
    let (cpu, wall) = waiter.join().unwrap();
    println!("idle wait: {wall:?} wall, {cpu:?} CPU");
    assert!(wall >= Duration::from_millis(400));
    // 50 µs of spinning plus two syscalls; allow a wide margin for a noisy host.
    assert!(
        cpu < Duration::from_millis(20),
        "a blocked wait used {cpu:?} of CPU over {wall:?}"
    );
}
