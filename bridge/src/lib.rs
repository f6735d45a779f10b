//! Carries a [memlink-shm](memlink_shm) segment over [Zenoh](zenoh), so that
//! clients on other hosts reach the same daemon, unchanged.
//!
//! On the daemon's host an [`Export`] (`memlink bridge export NAME --listen
//! ENDPOINT`) serves the segment; on another host an [`Import`] (`memlink
//! bridge import NAME --connect ENDPOINT`) creates a local segment with the
//! remote daemon's shape, which unmodified local clients connect to as to
//! any daemon. A program that wants no second process uses a
//! [`RemoteClient`], which speaks Zenoh itself.
//!
//! - **Clients stay individuals.** Each remote client becomes a client of
//!   its own on the daemon's side (its own slot and `ClientId`, replies to it
//!   alone, broadcasts reach it).
//! - **Priorities and order.** Each tier travels at its own Zenoh priority
//!   (Critical at `InteractiveHigh`, High at `Data`, Low at `DataLow`),
//!   reliably and in order, so order within a tier holds end to end.
//! - **Failures cross.** A remote client that leaves is a departure at the
//!   daemon once its last message is delivered; one whose bridge or host
//!   dies is a departure when Zenoh drops its liveliness token (at once for
//!   a crash, whose socket closes; after the lease for a silent network)
//!   plus [`export::GRACE`]. A daemon that dies or shuts down is a
//!   disconnect at every remote client after the last message it sent; an
//!   export that dies or goes silent is one within the lease. What was in
//!   flight on a broken link is lost; nothing is duplicated.
//! - **Backpressure.** Each client and direction has a credit window (1 MiB):
//!   a slow reader fills its ring, then the window, and the sender blocks;
//!   the bridge holds at most a window per stream, and Zenoh's callbacks
//!   never block (which would stop its keep-alives too).
//! - **Bursts.** What waits in a ring travels as one Zenoh sample per tier.
//! - **Accepted means delivered or refused.** A client is attached at the
//!   export (with the protocol version it speaks) before its messages go;
//!   an attach the daemon refuses, or a message it cannot take, is a
//!   [`Refusal`] that both sides log and the client's side is told of (an
//!   import ends its local segment, a [`RemoteClient`] is disconnected).
//!   Each side counts every client's messages ([`ClientCounts`]).
//!
//! See the README's section "Beyond one machine" for the commands and the
//! measured cost.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod counts;
mod error;
pub mod export;
mod frames;
mod import;
mod keys;
mod refusal;
mod remote;
mod stream;
mod window;
mod wire;

pub use config::BridgeConfig;
pub use counts::ClientCounts;
pub use error::BridgeError;
pub use export::Export;
pub use import::Import;
pub use refusal::Refusal;
pub use remote::RemoteClient;
pub use wire::Shape;

/// Writes Zenoh's own log to stderr, filtered by the `RUST_LOG` variable
/// (`RUST_LOG=zenoh=debug`; nothing when it is unset): why a link closed, why
/// a TLS handshake failed. For programs that install no `tracing`
/// subscriber of their own; `memlink bridge` calls it.
pub fn zenoh_log_from_env() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
