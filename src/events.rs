//! Lifecycle events through `tracing`, behind the default-off `tracing`
//! feature: a segment created or taken over, a client connected, left or
//! found dead, a slot reclaimed, a channel poisoned, a shutdown. Never on
//! the per-message path. Without the feature the macro compiles to nothing
//! and evaluates none of its arguments.
//!
//! Every event has target `memlink_shm`, level INFO (WARN for a dead client
//! and a poisoned channel), the message named in the list above, and the
//! field `segment` (its name); the others as given at each site (`slot`,
//! `pid`, `generation`, `by`, `dead_pid`).

/// `lifecycle!(level, "message", segment, field = value, ...)`.
macro_rules! lifecycle {
    ($level:ident, $msg:literal, $seg:expr $(, $k:ident = $v:expr)* $(,)?) => {{
        #[cfg(feature = "tracing")]
        ::tracing::event!(
            target: "memlink_shm",
            ::tracing::Level::$level,
            segment = %$seg.name(),
            $($k = $v,)*
            $msg
        );
        #[cfg(not(feature = "tracing"))]
        if false {
            let _ = (&$seg $(, &$v)*);
        }
    }};
}
