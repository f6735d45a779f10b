//! The endpoints: [`Daemon`] creates a named segment and serves the clients
//! that [`Client::connect`] to it.
//!
//! Each public type is a thin owner of an engine that does the work:
//! `daemon_engine` (the client table, fair reads across clients, sweeps of
//! dead clients) and `client` (a connection to one claimed slot, with a
//! sending half and a receiving half). The 0.1.3 compatibility layer in
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
mod daemon_engine;
mod message;
mod settings;
mod stats;

pub use crate::slot::ClientId;
pub use batch::Batch;
pub use client::{Client, ClientBuilder, ClientReceiver, ClientSender};
pub use daemon::{Daemon, DaemonBuilder};
pub use message::{ClientMessage, Message};
pub use stats::Stats;

pub(crate) use channel::deadline;
pub(crate) use daemon_engine::DaemonEngine;
pub(crate) use settings::Settings;
