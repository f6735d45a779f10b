//! # memlink-shm
//!
//! Messages between processes on one machine, through shared memory: a
//! [`Daemon`] creates a named segment, [`Client`]s connect to it, and each
//! client gets its own pair of lock-free single-producer/single-consumer
//! rings in the segment, with three priority tiers ([`Priority`]). A reader
//! that waits sleeps on a futex word in the segment; a send makes a syscall
//! only when somebody sleeps.
//!
//! ```
//! use memlink_shm::{Client, Daemon, Priority};
//! use std::time::Duration;
//!
//! let mut daemon = Daemon::create("quickstart")?;
//! let mut client = Client::connect("quickstart")?;
//! client.send(Priority::High, b"ping")?;
//! let msg = daemon.recv_timeout(Duration::from_secs(1))?;
//! assert_eq!((msg.priority(), msg.payload()), (Priority::High, &b"ping"[..]));
//! daemon.send_to(msg.client(), Priority::Critical, b"pong")?;
//! assert_eq!(client.recv_timeout(Duration::from_secs(1))?.payload(), b"pong");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Usually the two sides are two programs: `cargo run --example daemon` in
//! one terminal and `cargo run --example client` in another.
//!
//! ## Sending and receiving
//!
//! Each waiting mode is one method, whatever the message carries: a send
//! takes a [`Payload`], which is bytes (`&[u8]`, `&[u8; N]`, `&Vec<u8>`,
//! `&str`), a typed value (`&T` for any [`typed::Typed`] `T`, encoded
//! straight into the ring) or a [`Fill`] (a length and a closure that
//! writes the message in place); a receive returns an owned [`Message`]
//! ([`ClientMessage`] on the daemon), which [`Message::decode`]s a typed
//! value.
//!
//! | | blocks | never blocks | bounded wait | async |
//! |---|---|---|---|---|
//! | client -> daemon | [`Client::send`] | [`Client::try_send`] | [`Client::send_timeout`] | [`Client::send_async`] |
//! | daemon -> one client | [`Daemon::send_to`] | [`Daemon::try_send_to`] | [`Daemon::send_to_timeout`] | [`Daemon::send_to_async`] |
//! | daemon -> every client | [`Daemon::broadcast`] | [`DaemonSender::try_broadcast`] | [`DaemonSender::broadcast_timeout`] | [`DaemonSender::broadcast_async`] |
//! | receive | `recv` | `try_recv` | `recv_timeout` | `recv_async`, `stream` |
//! | receive in place (trusting the peer) | `recv_with` | `try_recv_with`, `try_recv_batch` | `recv_timeout_with` | `recv_with_async` |
//!
//! Where the methods are: the halves ([`ClientSender`], [`ClientReceiver`],
//! [`DaemonSender`], [`DaemonReceiver`]) have every call of their
//! direction, and the whole endpoints ([`Daemon`], [`Client`]) have the
//! common ones: the owned receives and the sends above, and their
//! halves through `sender()` and `receiver()` (`client.sender().send_batch(..)`,
//! `daemon.receiver().try_recv_with(..)`) or `split`. A batch ([`Batch`],
//! from `send_batch`) publishes many messages with one wake-up. A
//! receiver's `wait_ready` waits for a message without taking it (for a
//! loop that waits in one place and receives in another).
//!
//! What is neither a send nor a receive (ids, clients, sizes, counters,
//! congestion hints, the daemon's heartbeat, leaving or shutting down) is
//! on a control, and only there: [`DaemonControl`] or [`ClientControl`],
//! from `control()` on an endpoint or either half (`client.control().id()`,
//! `daemon.control().stats()`). A control is cheap to clone, and usable from
//! any thread, even inside a closure of either half. The whole endpoints
//! keep `shutdown` and `disconnect`, which consume them.
//!
//! - "Not now" is [`Error::Full`] (a send) or [`Error::Empty`] (a receive),
//!   and [`Error::Timeout`] for a bounded wait; [`Error::is_transient`] says
//!   whether retrying can help.
//! - A send wakes the reader if it sleeps; a batch publishes many messages
//!   with one wake-up. A daemon's send wakes the clients it wrote to, and
//!   only those.
//! - Readers take Critical before High before Low. The daemon serves its
//!   clients round-robin within a tier, in bursts of at most 16 messages.
//! - A blocking receive returns a message or an error, never "nothing": it
//!   waits again by itself when a wake-up finds the rings empty.
//! - When the daemon shuts down or dies, clients first receive what it sent,
//!   then [`Error::Disconnected`]. When a client leaves or dies, the daemon
//!   receives what it sent, then frees its slot; sending to it is
//!   [`Error::UnknownClient`].
//!
//! ## Async
//!
//! Every waiting call has an async form, for any executor:
//! [`Client::send_async`], [`Client::recv_async`], [`Client::stream`],
//! [`Daemon::recv_async`], [`Daemon::send_to_async`],
//! [`DaemonSender::broadcast_async`], [`Daemon::stream`] (and
//! `recv_with_async` on the receiving halves, in place). The futures are `Send` and cancellation-safe: a
//! dropped future took or sent a whole message, or none. A parked task's
//! waker is held by a watcher thread asleep on the same futex word a blocked
//! thread would sleep on, so an idle task costs no CPU, and sync and async
//! peers mix freely.
//!
//! ```
//! # use memlink_shm::{Client, Daemon, Priority};
//! # let name = format!("memlink-doc-async-{}", std::process::id());
//! # futures::executor::block_on(async {
//! let mut daemon = Daemon::create(&name)?;
//! let mut client = Client::connect(&name)?;
//! client.send_async(Priority::High, b"ping").await?;
//! let msg = daemon.recv_async().await?;
//! daemon.send_to_async(msg.client(), Priority::High, b"pong").await?;
//! assert_eq!(client.recv_async().await?.payload(), b"pong");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Shared memory is untrusted
//!
//! Every index, length and header read from the segment is validated. A peer
//! that writes impossible values gets its channel poisoned
//! ([`Error::Corrupted`] on this side, [`Error::Poisoned`] on its side); it
//! never causes a panic or an access outside the mapping here.
//!
//! A peer can also rewrite a message while it is being read. The owned
//! receives ([`Client::recv`], [`Daemon::recv`] and their `try_`,
//! `_timeout` and async forms, the streams) and the calls of
//! [`typed::Caller`] copy the message out of the ring with atomic loads
//! before anything looks at it: what they return, and what
//! [`Message::decode`] decodes, is this process's own memory, which no
//! peer can change. The borrowed forms of the receiving halves
//! ([`ClientReceiver::recv_with`], [`DaemonReceiver::recv_with`],
//! `try_recv_with`, `recv_timeout_with`, `try_recv_batch`,
//! `recv_with_async`) lend the
//! closure a `&[u8]` into the ring itself, zero-copy; that is sound while
//! the peer keeps the ring's protocol, which no process can check of
//! another. Use them with peers you trust (your own programs), and the
//! owned forms with any other.
//!
//! ## Typed messages and calls
//!
//! [`typed`]: a `#[repr(C)]` type (zerocopy) or any serde type (feature
//! `serde`) sent and received as such, with a tag checked on every record;
//! request/response with [`typed::Caller`] and [`Daemon::serve`].
//!
//! ## Looking inside a segment
//!
//! [`inspect`] reads a segment without joining it: its daemon, its clients,
//! how full their rings are, their counters, poison and liveness. It is the
//! one public door to a segment's insides (the layout itself is private, so
//! it can change without breaking callers).
//!
//! ## Crash recovery
//!
//! A daemon that starts on the name of a dead one takes the segment over,
//! and a daemon reclaims the slots of clients that died
//! ([`DaemonControl::reclaim_dead`]). [`liveness`] has the rest: a
//! [`liveness::PidFile`] for one instance at a time, and the removal of what
//! dead daemons and creators left behind ([`liveness::remove_orphans_in`],
//! which `memlink clean` runs).
//!
//! ## Layers
//!
//! Bottom up, in `src/`: `platform/` (one file per OS: segment files, futex,
//! process identity) -> `segment/` (name, mapping, wire format, validation;
//! it hands out raw ring regions) -> `wait/` (the event count sleepers wait
//! on; how a thread blocks and how a task parks with a watcher thread) ->
//! `slot.rs` (the life cycle of a client slot) -> `ring/` (the SPSC ring
//! built on a region, and the three priority tiers) -> `doorbell.rs` (which
//! rings the daemon looks at) -> `endpoint/` ([`Daemon`], [`Client`]) ->
//! [`typed`] (typed messages and calls over the endpoints) -> [`inspect`]
//! and [`liveness`] (PID files, orphans), and the 0.1.3 compatibility layer, `compat/`. `platform/fault_guard.rs`
//! keeps a segment file cut short by a peer from killing this process with
//! `SIGBUS`; `platform/fork.rs` makes a forked child let go of its parent's
//! segments, so that it cannot keep a dead parent alive. `events.rs` emits
//! lifecycle events through `tracing` (feature `tracing`). `testkit/`,
//! hidden, is what the crate's own tests, examples, benches and fuzz target
//! do to a segment that no program should (write into it as a hostile peer,
//! cut its file): it sits over every layer, and nothing in `src/` uses it.
//! The `memlink` command-line tool is the workspace member `cli/`.
//!
//! Errors belong to the layer that raises them: the segment's
//! (`SegmentError`), the slot table's (a full table, counted while it was
//! scanned), the rings' ([`Corruption`] and a full or too small ring), all
//! turned into [`OpenError`] and [`Error`] by `From`, never by reading
//! their text.
//!
//! ## Compatibility with 0.1.3
//!
//! The 0.1.3 API keeps compiling and working as its README showed:
//! [`transport::NrelayShmTransport`] (one type for both roles) with the
//! [`transport::ShmTransport`] trait, the heap rings
//! [`buffer::RingBuffer`] and [`pring::PriorityRingBuffer`],
//! [`recovery::RecoveryManager`] and [`recovery::Heartbeat`], [`safety`],
//! and its single error enum [`ShmError`], built from [`Error`] and
//! [`OpenError`]. It all lives in one folder, `compat/`, which nothing
//! below it imports; the transport is a thin layer over [`Daemon`] and
//! [`Client`]. New code should use those.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![warn(clippy::missing_errors_doc)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// `Debug` for a public error type: its message, as `Display` writes it
/// (like `std::io::Error`'s, which carries its message), so that `?` in
/// `main`, which prints `Error: {err:?}`, prints the advice and the numbers
/// rather than a bare variant.
macro_rules! debug_is_the_message {
    ($($t:ty),* $(,)?) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }
    )*};
}

#[macro_use]
mod events;

mod compat;
mod doorbell;
mod endpoint;
pub mod inspect;
pub mod liveness;
mod platform;
pub mod priority;
mod ring;
mod segment;
mod slot;
mod sync;
#[doc(hidden)]
pub mod testkit;
// Typed messages build on the async API, which loom builds leave out.
#[cfg(not(loom))]
pub mod typed;
mod wait;

pub use compat::{buffer, pring, recovery, safety, transport};
pub use compat::{ShmError, ShmResult};
pub use endpoint::{
    Batch, Client, ClientBuilder, ClientControl, ClientId, ClientMessage, ClientReceiver, ClientSender, Daemon,
    DaemonBuilder, DaemonControl, DaemonReceiver, DaemonSender, Error, Fill, Message, OpenError, Payload, Stats,
    TypeError,
};
#[cfg(not(loom))]
pub use endpoint::{ClientStream, DaemonStream};
pub use priority::Priority;
pub use ring::{Corruption, RingCounters};
pub use segment::MAX_NAME_LEN;

// The README's code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

// So are those of the reference pages the README links to.
#[cfg(doctest)]
#[doc = include_str!("../docs/failure-model.md")]
pub struct FailureModelDoctests;
