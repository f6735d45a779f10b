//! What the async calls of the client and the daemon share: running a
//! call's poll function as a future with a park of its own, and one step
//! of a receiving stream.

use std::future::{poll_fn, Future};
use std::task::{Context, Poll};

use crate::endpoint::Error;
use crate::wait::{Parking, TaskPark};

/// Polls `step` with a park of its own until it is ready: the future of an
/// async call. Dropping the future leaves the park (see [`Parking`]).
#[inline]
pub(crate) fn as_task<T>(mut step: impl FnMut(&mut TaskPark<'_, '_>) -> Poll<T>) -> impl Future<Output = T> {
    let mut parking = Parking::default();
    poll_fn(move |cx| {
        step(&mut TaskPark {
            cx,
            parking: &mut parking,
        })
    })
}

/// One item of a receiving stream, `step` polled with the stream's park:
/// the peer's end (`Disconnected`) ends the stream, other errors are items.
#[inline]
pub(crate) fn next_item<T>(
    cx: &mut Context<'_>,
    parking: &mut Parking,
    step: impl FnOnce(&mut TaskPark<'_, '_>) -> Poll<Result<T, Error>>,
) -> Poll<Option<Result<T, Error>>> {
    step(&mut TaskPark { cx, parking }).map(|r| match r {
        Err(Error::Disconnected) => None,
        other => Some(other),
    })
}
