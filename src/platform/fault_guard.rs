//! Linux and macOS: a guard against a segment file that shrinks under its
//! mappings.
//!
//! Any process of the segment's user may truncate the file. An access to a
//! mapped page past the new end raises `SIGBUS`, which kills the process by
//! default. As libwayland-server (`wl_shm`), wlroots and KWin do for
//! client-supplied pools, a `SIGBUS` handler catches the fault: when the
//! faulting address lies in a mapping registered here, it maps a private zero
//! page over the faulting page (`MAP_FIXED`) and counts the fault on that
//! mapping; the access then runs again and sees zeros. The layers above read
//! the count ([`FaultGuard::faults`]) and turn it into an error. Any other
//! `SIGBUS` goes to the handler that was installed before this one, or ends
//! the process as it would have without the guard.
//!
//! The handler is installed once per process, the first time a segment is
//! mapped. Up to [`GUARDED_MAPPINGS`] mappings are guarded at a time; a
//! mapping beyond that is not (its process dies on truncation, as without the
//! guard).

use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// How many mappings can be guarded at once.
const GUARDED_MAPPINGS: usize = 256;

/// One registered mapping. `start` and `len` are written under a sequence
/// lock (`seq` odd while they change), so the handler never pairs the start
/// of one mapping with the length of another.
struct Entry {
    taken: AtomicBool,
    seq: AtomicU32,
    start: AtomicUsize,
    len: AtomicUsize,
    faults: AtomicU32,
    /// Offset of the lowest page found gone (`usize::MAX`: none).
    lowest: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only the initialiser of ENTRIES
const FREE: Entry = Entry {
    taken: AtomicBool::new(false),
    seq: AtomicU32::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicU32::new(0),
    lowest: AtomicUsize::new(usize::MAX),
};

static ENTRIES: [Entry; GUARDED_MAPPINGS] = [FREE; GUARDED_MAPPINGS];

/// Faults caught in every mapping of this process: what the message path
/// loads (one static word) before it looks at any one mapping's count.
static TOTAL: AtomicU32 = AtomicU32::new(0);

/// How many lost pages the guard has caught in this process, in all
/// mappings: 0 while no segment was ever cut short under it.
#[inline]
pub(crate) fn faults_anywhere() -> u32 {
    TOTAL.load(Ordering::Relaxed)
}

/// What an unguarded mapping reports: never a fault.
static NO_FAULTS: AtomicU32 = AtomicU32::new(0);

/// The `SIGBUS` disposition found when the guard was installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

static INSTALL: Once = Once::new();

impl Entry {
    fn publish(&self, start: usize, len: usize) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.start.store(start, Ordering::Relaxed);
        self.len.store(len, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// The offset of `addr` in this entry's mapping, if it lies there
    /// (lock-free, signal-safe).
    fn offset_of(&self, addr: usize) -> Option<usize> {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 % 2 == 1 {
                std::hint::spin_loop(); // another thread is registering: a few stores
                continue;
            }
            let (start, len) = (self.start.load(Ordering::Relaxed), self.len.load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                let offset = addr.wrapping_sub(start);
                return (offset < len).then_some(offset);
            }
        }
    }
}

/// A mapping's registration with the guard; unregisters when dropped (drop
/// it before unmapping).
#[derive(Debug)]
pub(crate) struct FaultGuard {
    entry: Option<usize>,
}

impl FaultGuard {
    /// Guards the `len` bytes at `base` (page-aligned) until the guard drops.
    pub(crate) fn new(base: *const u8, len: usize) -> FaultGuard {
        INSTALL.call_once(install);
        let entry = ENTRIES.iter().position(|e| {
            e.taken
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = entry {
            ENTRIES[i].faults.store(0, Ordering::Relaxed);
            ENTRIES[i].lowest.store(usize::MAX, Ordering::Relaxed);
            ENTRIES[i].publish(base as usize, len);
        }
        FaultGuard { entry }
    }

    /// The fault counter of this mapping: how many pages of it were found
    /// gone (the file shrank) and replaced with private zero pages. Stays 0
    /// for an unguarded mapping.
    pub(crate) fn faults(&self) -> &'static AtomicU32 {
        self.entry.map_or(&NO_FAULTS, |i| &ENTRIES[i].faults)
    }

    /// Offset of the lowest page of the mapping found gone, if any.
    pub(crate) fn lowest_fault(&self) -> Option<usize> {
        let lowest = ENTRIES[self.entry?].lowest.load(Ordering::Relaxed);
        (lowest != usize::MAX).then_some(lowest)
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        if let Some(i) = self.entry {
            ENTRIES[i].publish(0, 0);
            ENTRIES[i].taken.store(false, Ordering::Release);
        }
    }
}

fn install() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE_SIZE.store(page as usize, Ordering::Relaxed);
    }
    // SAFETY: a zeroed sigaction is plain data to be overwritten; a null new
    // action makes sigaction only read the current one into `old`.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
            return;
        }
        old
    };
    let _ = PREVIOUS.set(old);
    // SAFETY: as above; the handler has the SA_SIGINFO signature and only
    // touches atomics and async-signal-safe calls (mmap, sigaction, raise).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let errno = Errno::save();
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, fault_address(info)) };
    // si_code > 0: a fault raised by the kernel, not a signal sent by kill().
    if code > 0 {
        let found = ENTRIES.iter().find_map(|e| Some((e, e.offset_of(addr)?)));
        if let Some((entry, offset)) = found {
            if cover_with_zero_page(addr) {
                let page = PAGE_SIZE.load(Ordering::Relaxed);
                entry.lowest.fetch_min(offset & !(page - 1), Ordering::Relaxed);
                entry.faults.fetch_add(1, Ordering::Relaxed);
                TOTAL.fetch_add(1, Ordering::Release);
                super::disturbed();
                errno.restore();
                return;
            }
        }
    }
    errno.restore();
    chain(sig, info, ctx, code > 0);
}

/// Maps a private zero page over the page holding `addr`.
fn cover_with_zero_page(addr: usize) -> bool {
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    let at = addr & !(page - 1);
    // The page lies inside a mapping registered by a live SharedMemory, which
    // only this crate reads and writes, through atomics and bounds-checked
    // ring code. MAP_FIXED replaces exactly that page.
    // SAFETY: a zero page in place of a lost one changes the contents, never the validity.
    let got = unsafe {
        libc::mmap(
            at as *mut libc::c_void,
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANON,
            -1,
            0,
        )
    };
    got != libc::MAP_FAILED
}

/// Hands a `SIGBUS` that is not ours to the handler found at install time.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, fault: bool) {
    let previous = PREVIOUS.get().map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if previous == libc::SIG_IGN && !fault {
        return;
    }
    if previous == libc::SIG_DFL || previous == libc::SIG_IGN {
        // A fault happens again on return and ends the process as it would
        // have; a sent signal is raised again (pending until this returns).
        // SAFETY: sigaction and raise are async-signal-safe; `action` is initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            if !fault {
                libc::raise(sig);
            }
        }
        return;
    }
    let flags = PREVIOUS.get().map_or(0, |p| p.sa_flags);
    // SAFETY: `previous` is the handler the process installed before this one,
    // with the signature its SA_SIGINFO flag says.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous);
            handler(sig, info, ctx);
        } else {
            let handler: extern "C" fn(libc::c_int) = std::mem::transmute(previous);
            handler(sig);
        }
    }
}

#[cfg(target_os = "linux")]
unsafe fn fault_address(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: the caller passes the kernel's siginfo of a SIGBUS.
    unsafe { (*info).si_addr() as usize }
}

#[cfg(target_os = "macos")]
unsafe fn fault_address(info: *mut libc::siginfo_t) -> usize {
    // SAFETY: the caller passes the kernel's siginfo of a SIGBUS.
    unsafe { (*info).si_addr as usize }
}

/// The interrupted code's `errno`, which `mmap` or `sigaction` may change.
struct Errno(libc::c_int);

impl Errno {
    #[cfg(target_os = "linux")]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns this thread's errno location; no preconditions.
        unsafe { libc::__errno_location() }
    }

    #[cfg(target_os = "macos")]
    fn location() -> *mut libc::c_int {
        // SAFETY: returns this thread's errno location; no preconditions.
        unsafe { libc::__error() }
    }

    fn save() -> Errno {
        // SAFETY: the location is valid for this thread.
        Errno(unsafe { *Self::location() })
    }

    fn restore(&self) {
        // SAFETY: the location is valid for this thread.
        unsafe { *Self::location() = self.0 }
    }
}
