//! Operating-system primitives, one file per OS behind one interface.
//!
//! Everything above this module is OS-independent: it asks for a segment file,
//! a wait on a 32-bit word in shared memory, a wake of that word, and process
//! identity. Linux is implemented today (`linux.rs`); Windows and macOS slot in
//! here with the same functions.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("memlink-shm currently supports Linux; the Windows and macOS ports live in platform/ once written");

/// Name of the operating system this build targets (`"linux"`, ...).
pub fn os_name() -> &'static str {
    std::env::consts::OS
}
