//! Segment names: a bare name is a file in the platform's shared-memory
//! directory (`/dev/shm` on Linux); a name with `/` is a path to a
//! file-backed mapping, as in the old examples (`/tmp/my_shm`).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::error::{SegmentError, SegmentResult};
use crate::platform;

/// Ending of the hidden files segments are built in before they are published.
pub(crate) const TEMP_SUFFIX: &str = ".memlink-tmp";

/// Longest segment name, in bytes: a bare name, or the last component of a
/// path. It leaves room, within the 255 bytes a file name may have, for the
/// hidden name a segment is built under.
pub const MAX_NAME_LEN: usize = 200;

/// Where a segment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentName {
    /// A POSIX shared-memory name, stored without a leading slash.
    Posix(String),
    /// A file-backed mapping at this path.
    Path(PathBuf),
}

impl SegmentName {
    /// Interprets `name`: containing `/` (or, on Windows, `\`) means a path,
    /// otherwise a bare name.
    pub(crate) fn parse(name: &str) -> SegmentResult<SegmentName> {
        let bad = |why: &str| SegmentError::InvalidName {
            name: name.to_owned(),
            reason: why.to_owned(),
        };
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let too_long = || bad(&format!("is longer than {MAX_NAME_LEN} bytes"));
        if is_path(name) {
            let path = PathBuf::from(name);
            let file = path.file_name().map_or(0, |f| f.len());
            if file == 0 {
                return Err(bad("names a directory, not a file"));
            }
            if file > MAX_NAME_LEN {
                return Err(too_long());
            }
            return Ok(SegmentName::Path(path));
        }
        if name == "." || name == ".." {
            return Err(bad("is not a valid shared-memory name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(too_long());
        }
        Ok(SegmentName::Posix(name.to_owned()))
    }

    /// The file that backs the segment.
    pub(crate) fn path(&self) -> PathBuf {
        match self {
            SegmentName::Posix(n) => platform::shm_path(n),
            SegmentName::Path(p) => p.clone(),
        }
    }

    /// Removes the segment's name; processes that mapped it keep their mapping.
    pub(crate) fn remove(&self) -> SegmentResult<()> {
        platform::remove_segment_file(&self.path()).map_err(|e| self.io_error("remove", e))
    }

    /// A hidden name in the same directory, where a segment is built before
    /// it is published under this name. It holds 64 random bits, so another
    /// user cannot plant a file there in advance to make `create` fail.
    pub(crate) fn temp_path(&self) -> PathBuf {
        let path = self.path();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{file}.{:016x}{TEMP_SUFFIX}", random_u64()))
    }

    pub(crate) fn io_error(&self, op: &'static str, e: io::Error) -> SegmentError {
        let name = self.to_string();
        if op == "create" && e.kind() == io::ErrorKind::NotFound {
            // Creating fails this way only when the directory is missing.
            let dir = self
                .path()
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            let source = io::Error::new(
                io::ErrorKind::NotFound,
                format!("the directory {dir} does not exist: create it first"),
            );
            return SegmentError::Io { op, name, source };
        }
        match e.kind() {
            io::ErrorKind::NotFound => SegmentError::NotFound { name },
            io::ErrorKind::AlreadyExists => SegmentError::AlreadyExists { name },
            io::ErrorKind::PermissionDenied => SegmentError::PermissionDenied {
                name,
                reason: format!("{op}: {e}"),
            },
            _ if platform::is_symlink_refusal(&e) => SegmentError::PermissionDenied {
                name,
                reason: "it is a symbolic link, which memlink never follows".into(),
            },
            _ => SegmentError::Io { op, name, source: e },
        }
    }
}

/// As the caller gave it (no prefix of this crate's): a shared-memory name,
/// or a path.
impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentName::Posix(n) => write!(f, "{n}"),
            SegmentName::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Whether `name` names a file path: it has a `/` (or, on Windows, `\\`).
fn is_path(name: &str) -> bool {
    name.contains('/') || (cfg!(windows) && name.contains('\\'))
}

/// What a message about `name` adds when the name was taken as a file path
/// (the rule of [`SegmentName::parse`]), so that `/bus`, meant as a
/// shared-memory name, is not a mystery; nothing for a shared-memory name.
pub(crate) fn path_note(name: &str) -> &'static str {
    if is_path(name) {
        " (taken as a file path, because it has a path separator)"
    } else {
        ""
    }
}

/// 64 bits no other process can predict: std's per-process random hash keys
/// (seeded from the OS) over a counter and the clock.
fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_a_slash_is_a_path_and_an_empty_one_is_refused() {
        assert!(matches!(SegmentName::parse("bus").unwrap(), SegmentName::Posix(_)));
        assert!(matches!(
            SegmentName::parse("/tmp/my_shm").unwrap(),
            SegmentName::Path(_)
        ));
        assert!(SegmentName::parse("").is_err());
    }

    #[test]
    fn messages_name_a_segment_as_given_and_say_when_it_is_a_path() {
        assert_eq!(SegmentName::parse("bus").unwrap().to_string(), "bus");
        assert_eq!(SegmentName::parse("/tmp/my_shm").unwrap().to_string(), "/tmp/my_shm");
        assert_eq!(path_note("bus"), "");
        assert!(path_note("/bus").contains("file path"));
    }
}
