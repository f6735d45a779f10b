//! Linux and macOS: what a fork does to this process's segments.
//!
//! A forked child counts one more fork ([`fork_generation`]): endpoints
//! compare it with the value at their making and refuse to work in a child
//! (`Error::Forked`). And the child lets go of its parent's segments:
//!
//! Liveness is an open-file-description lock on the segment file, and such
//! a lock lives as long as anything refers to that description: the parent's
//! descriptor, but also a child's copy of it after `fork`, and every mapping
//! of the file (a mapping holds the file open). A worker forked by a daemon
//! would so keep the daemon "alive" after the daemon died, and its clients
//! would wait for it forever; a client's forked child would keep its slot.
//!
//! So every segment mapping and lock-holding file registers here, and a
//! `pthread_atfork` handler, in the child, points the descriptor at
//! `/dev/null` (same number, so the child's `File` still closes cleanly) and
//! replaces the mapping with private zero pages (the child's copies of the
//! endpoints are inert, `Error::Forked`, and never read the parent's data).
//! Registration and release happen while forks are held off ([`ForkHold`]),
//! so a fork never copies a descriptor that is open but not yet registered,
//! or no longer registered but not yet closed.
//!
//! `posix_spawn` and `vfork` run no fork handlers; they exec at once, and
//! every descriptor here is close-on-exec. A raw `clone` system call is not
//! seen. Up to [`TRACKED`] registrations at a time; more are not released in
//! a child (as before this guard).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, AtomicUsize, Ordering};

/// How many registrations (segments and PID files) are tracked at once.
const TRACKED: usize = 1024;

struct Entry {
    /// The descriptor; -1 while the entry is free.
    fd: AtomicI32,
    start: AtomicUsize,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only the initialiser of ENTRIES
const FREE: Entry = Entry {
    fd: AtomicI32::new(-1),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
};

/// Written only while [`HELD`] is held by the writer, read by the child
/// handler (which runs holding it: the parent's prepare handler took it).
static ENTRIES: [Entry; TRACKED] = [FREE; TRACKED];

/// Held while entries change and across `fork` itself.
static HELD: AtomicBool = AtomicBool::new(false);

/// Forks seen on the way to this process (see [`fork_generation`]).
static FORKS: AtomicU32 = AtomicU32::new(0);

/// Whether the fork handlers are registered: not yet, being registered
/// (by a thread of process [`INSTALLER`]), or done.
static HANDLERS: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0;
const BUSY: u8 = 1;
const DONE: u8 = 2;
/// The process that registers (or registered) the handlers.
static INSTALLER: AtomicU32 = AtomicU32::new(0);
/// The last process in which the child handler ran.
static HANDLED_IN: AtomicU32 = AtomicU32::new(0);

/// How many times this process's ancestors forked on the way to it, as far
/// as this library saw: 0 in a process that never forked, one more in each
/// child. An endpoint records it when made; a different value means it is
/// a forked child's copy. One load once the handlers are registered.
#[inline]
pub(crate) fn fork_generation() -> u32 {
    install();
    FORKS.load(Ordering::Relaxed)
}

/// Whether this process is a forked child of the one where
/// [`fork_generation`] returned `generation`.
#[inline]
pub(crate) fn forked_since(generation: u32) -> bool {
    FORKS.load(Ordering::Relaxed) != generation
}

fn getpid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() as u32 }
}

fn acquire() {
    while HELD
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

fn release() {
    HELD.store(false, Ordering::Release);
}

/// Holds off `fork` in this process while it lives (other threads' forks
/// wait). Take it before opening a file that will hold a lock, and keep it
/// until the file is registered; take it before dropping a registration and
/// keep it until the file is closed and unmapped.
#[must_use]
#[derive(Debug)]
pub(crate) struct ForkHold(());

impl ForkHold {
    /// Waits until no fork and no other registration is under way.
    pub(crate) fn acquire() -> ForkHold {
        install();
        acquire();
        ForkHold(())
    }
}

impl Drop for ForkHold {
    fn drop(&mut self) {
        release();
    }
}

/// A file (and optionally its mapping) that a forked child gives up.
/// Make it while holding a [`ForkHold`]; drop it (with the file and the
/// mapping after it) while holding one too.
#[derive(Debug)]
pub(crate) struct ForkRelease {
    slot: Option<usize>,
}

impl ForkRelease {
    /// Registers `file` and the mapping of `len` bytes at `start` (`len` 0:
    /// no mapping). `_held` proves forks are held off.
    pub(crate) fn new(_held: &ForkHold, file: &std::fs::File, start: *const u8, len: usize) -> ForkRelease {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let slot = ENTRIES.iter().position(|e| e.fd.load(Ordering::Relaxed) < 0);
        if let Some(i) = slot {
            ENTRIES[i].start.store(start as usize, Ordering::Relaxed);
            ENTRIES[i].len.store(len, Ordering::Relaxed);
            ENTRIES[i].fd.store(fd, Ordering::Relaxed);
        }
        ForkRelease { slot }
    }
}

impl Drop for ForkRelease {
    fn drop(&mut self) {
        // The owner holds a ForkHold here (see the type's documentation); in
        // a forked child the entry is already free and this changes nothing.
        if let Some(i) = self.slot {
            ENTRIES[i].fd.store(-1, Ordering::Relaxed);
        }
    }
}

/// Registers the fork handlers once per process. Not with `Once`: a fork
/// while another thread runs the registration would leave the child's
/// `Once` running forever, and the child stuck in its first endpoint.
/// Instead, a thread that finds the registration under way in another
/// process (its parent, before the fork) settles it: if this process's
/// child handler ran, the handlers were registered before the fork and are
/// inherited; if not, it registers them.
#[inline]
fn install() {
    if HANDLERS.load(Ordering::Acquire) != DONE {
        install_slow();
    }
}

#[cold]
fn install_slow() {
    let me = getpid();
    loop {
        match HANDLERS.load(Ordering::Acquire) {
            DONE => return,
            NONE => {
                // The pid first: a child forked after this store sees it.
                INSTALLER.store(me, Ordering::Relaxed);
                if HANDLERS
                    .compare_exchange(NONE, BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    register();
                    HANDLERS.store(DONE, Ordering::Release);
                    return;
                }
            }
            _ => {
                let installer = INSTALLER.load(Ordering::Relaxed);
                if installer != me
                    && INSTALLER
                        .compare_exchange(installer, me, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    // Forked while the parent registered. glibc and macOS take
                    // the same lock to register and to fork, so the handlers
                    // either were registered before the fork (and the child
                    // handler ran here) or not at all.
                    if HANDLED_IN.load(Ordering::Relaxed) != me {
                        register();
                    }
                    HANDLERS.store(DONE, Ordering::Release);
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}

fn register() {
    // Fork runs `prepare` and `parent` in the parent, `child` in the child.
    // SAFETY: the handlers only use atomics and async-signal-safe calls.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

extern "C" fn prepare() {
    acquire();
}

extern "C" fn parent() {
    release();
}

extern "C" fn child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
    super::disturbed();
    HANDLED_IN.store(getpid(), Ordering::Relaxed);
    // SAFETY: a constant, NUL-terminated path; open is async-signal-safe.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    for e in &ENTRIES {
        let fd = e.fd.load(Ordering::Relaxed);
        if fd < 0 {
            continue;
        }
        let (start, len) = (e.start.load(Ordering::Relaxed), e.len.load(Ordering::Relaxed));
        if len > 0 {
            // The owner unmaps only after deregistering, so the range is a
            // live mapping of this (copied) address space; private zero pages
            // in its place keep it valid for the child's inert copies.
            // SAFETY: MAP_FIXED over a live mapping of ours, same length.
            unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
        }
        if null >= 0 {
            point_at(null, fd);
        }
        e.fd.store(-1, Ordering::Relaxed);
    }
    if null >= 0 {
        // SAFETY: closes the descriptor opened above, used by nothing else.
        unsafe { libc::close(null) };
    }
    release();
}

/// Makes `fd` a close-on-exec duplicate of `null`: the child's copy of the
/// parent's description goes, the number stays open for its owner to close.
fn point_at(null: libc::c_int, fd: libc::c_int) {
    #[cfg(target_os = "linux")]
    // SAFETY: both descriptors are open in this process; dup3 is async-signal-safe.
    unsafe {
        libc::dup3(null, fd, libc::O_CLOEXEC)
    };
    #[cfg(not(target_os = "linux"))]
    // SAFETY: as above, with dup2 and fcntl (both async-signal-safe).
    unsafe {
        if libc::dup2(null, fd) >= 0 {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}
