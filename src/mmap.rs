//! Named shared-memory segments: create, open, map, remove.
//!
//! A name without `/` is a POSIX shared-memory name (a file in `/dev/shm` on
//! Linux); a name with `/` is a path to a file-backed mapping, as in the old
//! examples (`/tmp/my_shm`). Creation is exclusive, uses mode 0600 unless told
//! otherwise and never follows a symlink; opening refuses symlinks and
//! segments owned by another user.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{ShmError, ShmResult};
use crate::platform;

/// Where a segment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentName {
    /// A POSIX shared-memory name, stored without a leading slash.
    Posix(String),
    /// A file-backed mapping at this path.
    Path(PathBuf),
}

impl SegmentName {
    /// Interprets `name`: containing `/` means a path, otherwise a POSIX name.
    ///
    /// ```
    /// use memlink_shm::mmap::SegmentName;
    /// assert!(matches!(SegmentName::parse("bus").unwrap(), SegmentName::Posix(_)));
    /// assert!(matches!(SegmentName::parse("/tmp/my_shm").unwrap(), SegmentName::Path(_)));
    /// assert!(SegmentName::parse("").is_err());
    /// ```
    pub fn parse(name: &str) -> ShmResult<SegmentName> {
        let bad = |why: &str| ShmError::InvalidConfig(format!("segment name {name:?} {why}"));
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if name.contains('/') {
            return Ok(SegmentName::Path(PathBuf::from(name)));
        }
        if name == "." || name == ".." {
            return Err(bad("is not a valid shared-memory name"));
        }
        if name.len() > platform::MAX_SHM_NAME {
            return Err(bad("is too long for a shared-memory name"));
        }
        Ok(SegmentName::Posix(name.to_owned()))
    }

    /// The file that backs the segment.
    pub fn path(&self) -> PathBuf {
        match self {
            SegmentName::Posix(n) => platform::shm_path(n),
            SegmentName::Path(p) => p.clone(),
        }
    }

    /// Removes the segment's name; processes that mapped it keep their mapping.
    pub fn remove(&self) -> ShmResult<()> {
        platform::remove_segment_file(&self.path()).map_err(|e| self.io_error("remove", e))
    }

    /// Whether a segment of this name exists.
    pub fn exists(&self) -> bool {
        std::fs::symlink_metadata(self.path()).is_ok()
    }

    pub(crate) fn io_error(&self, op: &'static str, e: io::Error) -> ShmError {
        let name = self.to_string();
        match e.kind() {
            io::ErrorKind::NotFound => ShmError::NotFound { name },
            io::ErrorKind::AlreadyExists => ShmError::AlreadyExists { name },
            io::ErrorKind::PermissionDenied => ShmError::PermissionDenied {
                name,
                reason: format!("{op}: {e}"),
            },
            _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                ShmError::PermissionDenied {
                    name,
                    reason: "it is a symbolic link, which memlink never follows".into(),
                }
            }
            _ => ShmError::Io {
                op,
                name,
                source: e,
            },
        }
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentName::Posix(n) => write!(f, "shm:{n}"),
            SegmentName::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A mapped segment. The mapping stays valid while this value lives.
#[derive(Debug)]
pub struct SharedMemory {
    map: MmapRaw,
    name: SegmentName,
    // Kept open: it is the handle later liveness checks lock on.
    _file: File,
}

impl SharedMemory {
    /// Creates a new zero-filled segment of `size` bytes with permissions `mode`.
    pub fn create(name: &SegmentName, size: usize, mode: u32) -> ShmResult<SharedMemory> {
        let path = name.path();
        let file = platform::create_segment_file(&path, size as u64, mode)
            .map_err(|e| name.io_error("create", e))?;
        // Populate: fault every page in now, not one by one on the message path.
        let map = MmapOptions::new().len(size).populate().map_raw(&file);
        let map = match map {
            Ok(m) => m,
            Err(e) => {
                let _ = platform::remove_segment_file(&path);
                return Err(name.io_error("map", e));
            }
        };
        Ok(SharedMemory {
            map,
            name: name.clone(),
            _file: file,
        })
    }

    /// Maps an existing segment, checking that this user owns it.
    pub fn open(name: &SegmentName) -> ShmResult<SharedMemory> {
        let file =
            platform::open_segment_file(&name.path()).map_err(|e| name.io_error("open", e))?;
        let (uid, len) =
            platform::file_owner_and_size(&file).map_err(|e| name.io_error("stat", e))?;
        let me = platform::current_uid();
        if uid != me && me != 0 {
            return Err(ShmError::PermissionDenied {
                name: name.to_string(),
                reason: format!("owned by uid {uid}, not by this user ({me}): refusing a segment another user may control"),
            });
        }
        let len = usize::try_from(len).map_err(|_| ShmError::InvalidSegment {
            name: name.to_string(),
            reason: "size does not fit in memory".into(),
        })?;
        if len == 0 {
            return Err(ShmError::InvalidSegment {
                name: name.to_string(),
                reason: "segment is empty (its daemon may still be starting)".into(),
            });
        }
        let map = MmapOptions::new()
            .len(len)
            .populate()
            .map_raw(&file)
            .map_err(|e| name.io_error("map", e))?;
        Ok(SharedMemory {
            map,
            name: name.clone(),
            _file: file,
        })
    }

    /// Start of the mapping (page-aligned, never null).
    pub fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("mmap never returns null")
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never true for a mapped segment).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_share_bytes_and_remove() {
        let name =
            SegmentName::parse(&format!("memlink-mmap-test-{}", platform::current_pid())).unwrap();
        let _ = name.remove();
        let a = SharedMemory::create(&name, 8192, 0o600).unwrap();
        assert!(matches!(
            SharedMemory::create(&name, 8192, 0o600),
            Err(ShmError::AlreadyExists { .. })
        ));
        let b = SharedMemory::open(&name).unwrap();
        assert_eq!(b.len(), 8192);
        // SAFETY: both mappings are 8192 bytes long and alive; offset 100 is in bounds.
        unsafe {
            a.base().as_ptr().add(100).write(42);
            assert_eq!(b.base().as_ptr().add(100).read(), 42);
        }
        name.remove().unwrap();
        assert!(matches!(
            SharedMemory::open(&name),
            Err(ShmError::NotFound { .. })
        ));
    }
}
