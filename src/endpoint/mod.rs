//! The endpoints: [`Daemon`] creates a named segment and serves the clients
//! that [`Client::connect`] to it.
//!
//! Each endpoint is built of a receiving and a sending part: the daemon's
//! (`daemon/receiving.rs`, `daemon/sending.rs`: the client table, fair reads
//! across clients, sweeps of dead clients) and the client's (`client/`: a
//! connection to one claimed slot, a sending half and a receiving half). The 0.1.3 compatibility layer in
//! [`crate::transport`] wraps the same two types.
//!
//! Conventions are std's and crossbeam's: `send` blocks while the ring is
//! full, `try_send` never blocks, `send_timeout` bounds the wait; likewise
//! `recv`, `try_recv`, `recv_timeout`. Every successful send wakes a reader
//! that sleeps, with a syscall only if one does. "Nothing to read" is always
//! [`crate::Error::Empty`].

mod batch;
mod channel;
mod client;
mod daemon;
mod error;
mod fault;
mod in_place;
mod message;
mod open_error;
mod outlet;
mod payload;
mod settings;
mod stats;
#[cfg(not(loom))]
mod task;
mod type_error;

pub use crate::slot::ClientId;
pub use batch::Batch;
pub use client::{Client, ClientBuilder, ClientControl, ClientReceiver, ClientSender};
pub use daemon::{Daemon, DaemonBuilder, DaemonControl, DaemonReceiver, DaemonSender};
pub use error::Error;
pub use message::{ClientMessage, Message};
pub use open_error::OpenError;
// For the typed layer, which loom builds leave out.
#[cfg(not(loom))]
pub(crate) use payload::sealed::{Encode, Encoded};
pub use payload::{Fill, Payload};
pub use stats::Stats;
pub use type_error::TypeError;
#[cfg(not(loom))]
pub use {client::ClientStream, daemon::DaemonStream};

#[cfg(not(loom))]
pub(crate) use channel::Deadline;

#[cfg(test)]
mod tests {
    /// The endpoints and their halves move between threads, and sharing one
    /// by reference (its `&self` methods are queries) compiles.
    #[test]
    fn endpoints_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Daemon>();
        check::<super::DaemonReceiver>();
        check::<super::DaemonSender>();
        check::<super::Client>();
        check::<super::ClientSender>();
        check::<super::ClientReceiver>();
        check::<super::Message>();
        check::<super::ClientMessage>();
        check::<crate::Error>();
        check::<crate::OpenError>();
    }
}
