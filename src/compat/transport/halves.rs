//! The two halves of an endpoint behind `RefCell`s, as both roles of
//! [`super::NrelayShmTransport`] hold them: so that the `&self` methods of
//! the 0.1.3 API work, one half can be used from inside the other's
//! closure, and a call from inside a half's own closure is refused as
//! [`ShmError::Reentrant`].

use std::cell::{Cell, RefCell, RefMut};
use std::time::Duration;

use crate::compat::ShmError;
use crate::{ClientReceiver, ClientSender, DaemonReceiver, DaemonSender};

/// A call from inside one of the same half's own closures: a
/// [`ShmError::Reentrant`] once it reaches the caller (nothing to carry
/// until then, so a borrow's result stays two words).
#[derive(Debug)]
pub(super) struct Reentrant;

impl From<Reentrant> for ShmError {
    fn from(_: Reentrant) -> ShmError {
        ShmError::Reentrant
    }
}

/// A half whose blocking calls spin before they sleep.
pub(super) trait Spins {
    fn set_spin(&mut self, spin: Duration);
}

macro_rules! spins {
    ($($half:ty),*) => {$(
        impl Spins for $half {
            fn set_spin(&mut self, spin: Duration) {
                <$half>::set_spin(self, spin);
            }
        }
    )*};
}
spins!(ClientSender, ClientReceiver, DaemonSender, DaemonReceiver);

#[derive(Debug)]
pub(super) struct Halves<Tx, Rx> {
    tx: RefCell<Tx>,
    rx: RefCell<Rx>,
    /// A spin asked for while a half was busy: applied at the next call
    /// that can wait (`tx` or `rx`; the spin matters to nothing else).
    pending_spin: Cell<Option<Duration>>,
}

impl<Tx: Spins, Rx: Spins> Halves<Tx, Rx> {
    pub(super) fn new(tx: Tx, rx: Rx) -> Halves<Tx, Rx> {
        Halves {
            tx: RefCell::new(tx),
            rx: RefCell::new(rx),
            pending_spin: Cell::new(None),
        }
    }

    /// The sending half for a call that can wait, with any spin missed
    /// while it was busy, unless this is a call from inside its own closure.
    #[inline(always)]
    pub(super) fn tx(&self) -> Result<RefMut<'_, Tx>, Reentrant> {
        self.catch_up();
        self.tx.try_borrow_mut().map_err(|_| Reentrant)
    }

    /// The receiving half for a call that can wait, with any spin missed
    /// while it was busy, unless this is a call from inside its own closure.
    #[inline(always)]
    pub(super) fn rx(&self) -> Result<RefMut<'_, Rx>, Reentrant> {
        self.catch_up();
        self.rx.try_borrow_mut().map_err(|_| Reentrant)
    }

    /// The sending half for a call that does not wait, unless this is a
    /// call from inside its own closure. A spin asked for while a half was
    /// busy is left for the next call that can wait (only waits spin): so
    /// that a write that need not wait does not look for one (2
    /// instructions of every `old_*` case in `examples/instructions.rs`).
    #[inline(always)]
    pub(super) fn tx_now(&self) -> Result<RefMut<'_, Tx>, Reentrant> {
        self.tx.try_borrow_mut().map_err(|_| Reentrant)
    }

    /// The receiving half for a call that does not wait (see
    /// [`Halves::tx_now`]), unless this is a call from inside its own
    /// closure.
    #[inline(always)]
    pub(super) fn rx_now(&self) -> Result<RefMut<'_, Rx>, Reentrant> {
        self.rx.try_borrow_mut().map_err(|_| Reentrant)
    }

    /// The sending half if it is idle (not lent to a closure up the stack).
    #[inline(always)]
    pub(super) fn idle_tx(&self) -> Option<RefMut<'_, Tx>> {
        self.tx.try_borrow_mut().ok()
    }

    /// Sets the spin of both halves; one busy now (this is a call from
    /// inside its closure) takes it at a later call.
    pub(super) fn set_spin(&self, spin: Duration) {
        let tx = self.tx.try_borrow_mut().map(|mut tx| tx.set_spin(spin));
        let rx = self.rx.try_borrow_mut().map(|mut rx| rx.set_spin(spin));
        self.pending_spin.set((tx.is_err() || rx.is_err()).then_some(spin));
    }

    /// Gives both halves a spin that one missed while it was busy.
    #[inline(always)]
    fn catch_up(&self) {
        if self.pending_spin.get().is_some() {
            self.apply_pending_spin();
        }
    }

    #[cold]
    fn apply_pending_spin(&self) {
        if let Some(spin) = self.pending_spin.take() {
            self.set_spin(spin);
        }
    }
}
