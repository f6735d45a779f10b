//! A segment file cut short by another process: on Linux and macOS the
//! processes that touch the lost pages get an error, not SIGBUS, and a daemon
//! goes on serving the clients whose channels are still whole; a SIGBUS that
//! is not about a segment still reaches the handler installed before. On
//! Windows a mapped file cannot be shrunk at all.

mod support;

use std::time::Duration;

use memlink_shm::{Client, Daemon, Priority};
use support::{unique_name, SegmentGuard};

const STEP: Duration = Duration::from_secs(30);

fn three_client_daemon(name: &str) -> Daemon {
    Daemon::builder(name)
        .size(256 << 10)
        .max_clients(3)
        .max_message_size(1024)
        .create()
        .expect("create")
}

#[cfg(unix)]
mod cut {
    use super::*;
    use std::io::{BufRead, BufReader, Write};

    use memlink_shm::testkit::{truncate_segment, Peer};
    use memlink_shm::{Corruption, Error};
    use support::{child_role, child_watchdog, watchdog, Children};

    /// Runs `op` until it fails (at most 1000 times) and returns the error.
    fn first_error<T>(mut op: impl FnMut() -> Result<T, Error>) -> Error {
        for _ in 0..1000 {
            if let Err(e) = op() {
                return e;
            }
        }
        panic!("1000 operations on a cut segment all succeeded");
    }

    fn is_truncated(e: &Error) -> bool {
        matches!(e, Error::Corrupted(Corruption::SegmentTruncated))
    }

    #[test]
    fn a_daemon_and_client_whose_control_region_is_cut_get_errors() {
        let name = unique_name("cut-all");
        let _g = SegmentGuard(name.clone());
        let mut daemon = three_client_daemon(&name);
        let mut client = Client::connect(&name).expect("connect");
        client.send(Priority::High, b"before").expect("send");
        assert_eq!(daemon.recv_timeout(STEP).expect("recv").payload(), b"before");

        truncate_segment(&name, 0).expect("cut the segment file");

        let e = first_error(|| client.try_send(Priority::High, b"after"));
        assert!(is_truncated(&e), "client send: {e}");
        let e = client.try_recv().expect_err("client recv");
        assert!(is_truncated(&e), "client recv: {e}");
        let e = first_error(|| daemon.try_recv().map(drop));
        assert!(is_truncated(&e), "daemon recv: {e}");
        let e = daemon.try_recv().expect_err("the daemon stays failed");
        assert!(is_truncated(&e), "daemon recv again: {e}");
        assert!(!client.control().is_connected());
    }

    /// The cutting client: connects, says hello, waits for "go" on stdin, cuts
    /// the file at the offset given, then writes and reads until it gets the
    /// error (a SIGBUS would kill it: the parent sees a failed exit).
    fn run_cutter(name: &str, cut_at: u64) {
        child_watchdog(Duration::from_secs(120));
        let mut client = Client::connect(name).expect("connect");
        client.send(Priority::High, b"hello").expect("hello");
        println!("ready");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("wait for go");
        truncate_segment(name, cut_at).expect("cut the segment file");
        let e = first_error(|| {
            client.try_send(Priority::Low, &[7u8; 1000])?;
            client.try_recv().map(drop).or_else(|e| match e {
                Error::Empty => Ok(()),
                e => Err(e),
            })
        });
        assert!(is_truncated(&e), "the cutter's error: {e}");
    }

    #[test]
    fn a_client_that_cuts_the_segment_gets_an_error_and_the_daemon_serves_the_rest() {
        if let Some(role) = child_role() {
            return run_cutter(&role[0], role[1].parse().expect("offset"));
        }
        let name = unique_name("cut-client");
        let _g = SegmentGuard(name.clone());
        let children = Children::default();
        let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
        let mut daemon = three_client_daemon(&name);
        let mut good = Client::connect(&name).expect("connect");
        assert_eq!(good.control().id().slot(), 0);
        // Cut where channel 1 starts: channel 0 (the good client's) stays whole.
        let layout = Peer::open(&name).expect("open").layout();
        let cut_at = layout.channel_offset(1).to_string();
        let test = "cut::a_client_that_cuts_the_segment_gets_an_error_and_the_daemon_serves_the_rest";
        let (cutter, mut go, out) = children.spawn_talking(test, &[&name, &cut_at]);
        let mut lines = BufReader::new(out).lines().map_while(Result::ok);
        assert!(lines.any(|l| l.trim() == "ready"), "the cutter did not start");
        std::thread::spawn(move || lines.for_each(drop));
        let hello = daemon.recv_timeout(STEP).expect("hello");
        assert_eq!(hello.client().slot(), 1);
        writeln!(go).expect("tell the cutter to go");
        assert!(children.wait_success(cutter), "the cutter died or failed");

        // The daemon touched the cut channel (or sweeps it now): it goes on
        // serving the client whose channel is whole, many times over.
        for i in 0..200u32 {
            good.send(Priority::High, &i.to_le_bytes()).expect("good send");
            let msg = daemon.recv_timeout(STEP).expect("the daemon serves the good client");
            assert_eq!(msg.payload(), i.to_le_bytes());
            daemon.send_to(msg.client(), Priority::High, b"ok").expect("reply");
            assert_eq!(good.recv_timeout(STEP).expect("good recv").payload(), b"ok");
        }
        assert!(daemon.try_send_to(hello.client(), Priority::High, b"x").is_err());
        // Inspecting a cut segment maps it afresh: refused, since the file is
        // shorter than its header says (and never a SIGBUS).
        assert!(memlink_shm::inspect::segment(&name).is_err());
    }

    /// A process whose own SIGBUS handler was there before the first segment:
    /// a SIGBUS sent to it, and a fault in a mapping that is not a segment,
    /// both reach that handler; a cut segment still reaches the guard.
    mod chained {
        use super::*;
        use std::sync::atomic::{AtomicUsize, Ordering};

        static SENT: AtomicUsize = AtomicUsize::new(0);
        static FAULTS: AtomicUsize = AtomicUsize::new(0);

        extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
            // SAFETY: the kernel's siginfo for an SA_SIGINFO handler.
            let code = unsafe { (*info).si_code };
            if code <= 0 {
                SENT.fetch_add(1, Ordering::Relaxed);
                return;
            }
            #[cfg(target_os = "linux")]
            // SAFETY: as above.
            let addr = unsafe { (*info).si_addr() } as usize;
            #[cfg(target_os = "macos")]
            // SAFETY: as above.
            let addr = unsafe { (*info).si_addr } as usize;
            let page = 4096usize.max(page_size());
            // SAFETY: replaces the faulting page of the test's own mapping.
            unsafe {
                libc::mmap(
                    (addr & !(page - 1)) as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANON,
                    -1,
                    0,
                );
            }
            FAULTS.fetch_add(1, Ordering::Relaxed);
        }

        fn page_size() -> usize {
            // SAFETY: no preconditions.
            unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
        }

        fn install() {
            // SAFETY: a zeroed sigaction is plain data; the handler has the
            // SA_SIGINFO signature.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction =
                    handler as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
                action.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut action.sa_mask);
                assert_eq!(libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()), 0);
            }
        }

        /// Maps `len` bytes of a fresh file, then cuts the file to nothing.
        fn cut_mapping(path: &std::path::Path, len: usize) -> (*mut u8, std::fs::File) {
            use std::os::unix::io::AsRawFd;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .expect("create");
            file.set_len(len as u64).expect("size");
            // SAFETY: maps the whole (sized) file shared; checked for failure.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            file.set_len(0).expect("cut");
            (p.cast(), file)
        }

        fn run_child(name: &str) {
            child_watchdog(Duration::from_secs(120));
            install();
            // The first segment installs the guard over the handler above.
            let mut daemon = three_client_daemon(name);
            let mut client = Client::connect(name).expect("connect");

            // A SIGBUS sent by a process reaches the old handler.
            // SAFETY: raising a signal whose handler is installed.
            assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
            assert_eq!(
                SENT.load(Ordering::Relaxed),
                1,
                "a sent SIGBUS must reach the old handler"
            );

            // A fault in a mapping that is not a segment reaches it too.
            let path = std::env::temp_dir().join(format!("memlink-sigbus-{}", std::process::id()));
            let (p, _file) = cut_mapping(&path, 8192);
            // SAFETY: the page is mapped; it faults (the file is cut), the old
            // handler maps a zero page over it, and the read runs again.
            let byte = unsafe { std::ptr::read_volatile(p.add(100)) };
            let _ = std::fs::remove_file(&path);
            assert_eq!(
                (byte, FAULTS.load(Ordering::Relaxed)),
                (0, 1),
                "the fault must reach the old handler"
            );

            // A cut segment is still the guard's: an error, and the old handler sees nothing.
            truncate_segment(name, 0).expect("cut");
            let e = first_error(|| client.try_send(Priority::High, b"x"));
            assert!(is_truncated(&e), "client: {e}");
            let e = first_error(|| daemon.try_recv().map(drop));
            assert!(is_truncated(&e), "daemon: {e}");
            assert_eq!(FAULTS.load(Ordering::Relaxed), 1, "segment faults are not chained");
            println!("checked");
        }

        #[test]
        fn a_sigbus_outside_the_segments_reaches_the_handler_installed_before() {
            if let Some(role) = child_role() {
                return run_child(&role[0]);
            }
            let name = unique_name("sigbus-chain");
            let _g = SegmentGuard(name.clone());
            let children = Children::default();
            let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
            let test = "cut::chained::a_sigbus_outside_the_segments_reaches_the_handler_installed_before";
            let (child, out) = children.spawn_piped(test, &[&name]);
            // Read to the end: a closed pipe would fail the child's harness.
            let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
            let checked = lines.iter().any(|l| l.trim() == "checked");
            assert!(children.wait_success(child) && checked, "the child failed its checks");
        }

        /// Without any handler of the program's own, a fault outside the
        /// segments ends the process with SIGBUS, as it would without the guard
        /// (it must not loop, nor be swallowed).
        fn run_unhandled(name: &str) {
            child_watchdog(Duration::from_secs(120));
            let _daemon = three_client_daemon(name);
            let path = std::env::temp_dir().join(format!("memlink-sigbus-dfl-{}", std::process::id()));
            let (p, _file) = cut_mapping(&path, 8192);
            let _ = std::fs::remove_file(&path);
            // SAFETY: the page is mapped; the read faults and ends the process.
            let byte = unsafe { std::ptr::read_volatile(p.add(100)) };
            println!("survived with {byte}");
        }

        #[test]
        fn a_fault_outside_the_segments_still_ends_an_unprepared_process() {
            use std::os::unix::process::ExitStatusExt;
            if let Some(role) = child_role() {
                return run_unhandled(&role[0]);
            }
            let name = unique_name("sigbus-dfl");
            let _g = SegmentGuard(name.clone());
            let children = Children::default();
            let _w = watchdog(Duration::from_secs(120), &children, &[&name]);
            let exe = std::env::current_exe().expect("test binary");
            let status = std::process::Command::new(exe)
                .args([
                    "cut::chained::a_fault_outside_the_segments_still_ends_an_unprepared_process",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("MEMLINK_TEST_ROLE", &name)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run the child");
            assert_eq!(status.signal(), Some(libc::SIGBUS), "the child: {status:?}");
        }
    }
}

/// Windows refuses to shrink a file below a mapped view, so a peer cannot
/// cut a segment short: the attempt fails and the segment goes on working.
#[cfg(windows)]
#[test]
fn a_mapped_segment_cannot_be_cut_short() {
    let name = unique_name("cut-win");
    let _g = SegmentGuard(name.clone());
    let mut daemon = three_client_daemon(&name);
    let mut client = Client::connect(&name).expect("connect");
    // Opening for writing is allowed (the segment's own handles share
    // writes); shrinking is what fails.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(memlink_shm::inspect::segment_path(&name).expect("name"))
        .expect("open the segment file");
    let cut = file.set_len(4096);
    assert!(cut.is_err(), "Windows let a mapped segment file shrink");
    client.send(Priority::High, b"still here").expect("send");
    assert_eq!(daemon.recv_timeout(STEP).expect("recv").payload(), b"still here");
}
