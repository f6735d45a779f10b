//! Mapping a segment file: create (hidden, then published), open, remove.
//!
//! Creation is exclusive, uses mode 0600 unless told otherwise and never
//! follows a symlink; opening refuses symlinks and segments owned by another
//! user.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

use memmap2::{MmapOptions, MmapRaw};

use super::error::{SegmentError, SegmentResult};
use super::layout::DAEMON_LOCK_BYTE;
use super::name::SegmentName;
use crate::platform;

/// A mapped segment. The mapping stays valid while this value lives.
#[derive(Debug)]
pub(crate) struct SharedMemory {
    /// Declared before `map`, so they are dropped (unregistered) before the unmap.
    _wake_scope: platform::WakeScope,
    guard: platform::FaultGuard,
    /// Declared before `map` and `file`: a forked child gives both up.
    _fork_release: platform::ForkRelease,
    map: MmapRaw,
    name: SegmentName,
    /// Kept open: liveness locks live on this open file description.
    file: File,
    /// Where the file is while it is hidden (built, not yet published).
    hidden: Mutex<Option<PathBuf>>,
    /// Set when dropping, declared last: forks wait until the mapping and
    /// the file are gone, so no child inherits them unregistered.
    closing: Option<platform::ForkHold>,
}

impl SharedMemory {
    /// Creates a new zero-filled segment of `size` bytes with permissions `mode`.
    pub(crate) fn create(name: &SegmentName, size: usize, mode: u32) -> SegmentResult<SharedMemory> {
        Self::create_at(name, &name.path(), size, mode)
    }

    /// Creates a segment under a hidden name, to be initialised and then made
    /// visible atomically with [`SharedMemory::publish`]. Dropped unpublished,
    /// the hidden file is removed. A file planted at the hidden name does not
    /// stop it: it picks another.
    pub(crate) fn create_hidden(name: &SegmentName, size: usize, mode: u32) -> SegmentResult<SharedMemory> {
        let mut attempts = 0;
        loop {
            let tmp = name.temp_path();
            match Self::create_at(name, &tmp, size, mode) {
                Ok(shm) => {
                    *shm.hidden() = Some(tmp);
                    return Ok(shm);
                }
                Err(SegmentError::AlreadyExists { .. }) if attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates, sizes and maps the file at `path`; on any failure after the
    /// file exists, removes it (it is ours: creation is exclusive). The
    /// daemon's liveness byte is locked before anything else, so a cleaner
    /// never takes a file being built by a live process for a dead one's.
    fn create_at(name: &SegmentName, path: &Path, size: usize, mode: u32) -> SegmentResult<SharedMemory> {
        let held = platform::ForkHold::acquire();
        let file = platform::create_segment_file(path, mode).map_err(|e| name.io_error("create", e))?;
        if !matches!(platform::try_lock_byte(&file, DAEMON_LOCK_BYTE), Ok(true)) {
            drop(file);
            let _ = platform::remove_segment_file(path);
            return Err(name.io_error("lock", io::Error::other("a new segment file could not be locked")));
        }
        let dir = path.parent().map(|d| d.display().to_string()).unwrap_or_default();
        let sized = platform::reserve(&file, size as u64).map_err(|e| {
            let why = format!(
                "could not reserve {size} bytes: {e}; the filesystem of {dir} has less room than that \
                 (see `df` for it), or choose a smaller size"
            );
            io::Error::new(e.kind(), why)
        });
        // Populate: fault every page in now, not one by one on the message path.
        let mapped = sized.and_then(|()| {
            MmapOptions::new().len(size).populate().map_raw(&file).map_err(|e| {
                let why = format!("could not map {size} bytes: {e}; choose a smaller size");
                io::Error::new(e.kind(), why)
            })
        });
        match mapped {
            Ok(map) => Ok(Self::mapped(&held, map, name, file)),
            Err(e) => {
                drop(file);
                let _ = platform::remove_segment_file(path);
                Err(SegmentError::Io {
                    op: "create",
                    name: name.to_string(),
                    source: e,
                })
            }
        }
    }

    /// Wraps a fresh mapping of `file`, registering it for wake-ups, against
    /// truncation and for release in a forked child (`held` since `file` was
    /// opened).
    fn mapped(held: &platform::ForkHold, map: MmapRaw, name: &SegmentName, file: File) -> SharedMemory {
        SharedMemory {
            _wake_scope: platform::WakeScope::new(map.as_ptr(), map.len(), &file),
            guard: platform::FaultGuard::new(map.as_ptr(), map.len()),
            _fork_release: platform::ForkRelease::new(held, &file, map.as_ptr(), map.len()),
            map,
            name: name.clone(),
            file,
            hidden: Mutex::new(None),
            closing: None,
        }
    }

    fn hidden(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        self.hidden.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a hidden segment visible under its name; fails with
    /// [`SegmentError::AlreadyExists`] if the name is taken.
    pub(crate) fn publish(&self) -> SegmentResult<()> {
        let mut hidden = self.hidden();
        let Some(tmp) = hidden.as_ref() else { return Ok(()) };
        platform::link_file(tmp, &self.name.path()).map_err(|e| self.name.io_error("publish", e))?;
        let _ = platform::remove_segment_file(tmp);
        *hidden = None;
        Ok(())
    }

    /// Makes a hidden segment visible under its name, atomically replacing
    /// whatever file had that name.
    pub(crate) fn publish_replacing(&self) -> SegmentResult<()> {
        let mut hidden = self.hidden();
        let Some(tmp) = hidden.as_ref() else { return Ok(()) };
        platform::rename_file(tmp, &self.name.path()).map_err(|e| self.name.io_error("publish", e))?;
        *hidden = None;
        Ok(())
    }

    /// The open segment file (liveness locks are taken on it).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Removes the name if it still names this segment's file (never a
    /// successor's). Returns whether it did.
    pub(crate) fn remove_if_current(&self) -> bool {
        let path = self.name.path();
        matches!(platform::same_file(&self.file, &path), Ok(true)) && platform::remove_segment_file(&path).is_ok()
    }

    /// Maps an existing segment, checking that this user owns it.
    pub(crate) fn open(name: &SegmentName) -> SegmentResult<SharedMemory> {
        Self::open_owned_by(name, platform::current_uid())
    }

    /// Maps an existing segment, checking that user `owner` owns it (a
    /// segment shared with a group through its mode belongs to the daemon's
    /// user, which its clients name here).
    pub(crate) fn open_owned_by(name: &SegmentName, owner: u32) -> SegmentResult<SharedMemory> {
        let held = platform::ForkHold::acquire();
        let file = platform::open_segment_file(&name.path()).map_err(|e| name.io_error("open", e))?;
        let len = Self::mappable_len(name, &file, owner)?;
        let map = MmapOptions::new()
            .len(len)
            .populate()
            .map_raw(&file)
            .map_err(|e| name.io_error("map", e))?;
        Ok(Self::mapped(&held, map, name, file))
    }

    /// Maps an existing segment of user `owner` read-only, from a file
    /// opened read-only: this process cannot write to it (for inspection).
    pub(crate) fn open_read_only(name: &SegmentName, owner: u32) -> SegmentResult<SharedMemory> {
        let held = platform::ForkHold::acquire();
        let file = platform::open_segment_file_read_only(&name.path()).map_err(|e| name.io_error("open", e))?;
        let len = Self::mappable_len(name, &file, owner)?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(|e| name.io_error("map", e))?;
        Ok(Self::mapped(&held, map, name, file))
    }

    /// The size to map of a segment file of user `owner`.
    fn mappable_len(name: &SegmentName, file: &File, owner: u32) -> SegmentResult<usize> {
        let len = check_owner(name, file, owner)?;
        let len = usize::try_from(len).map_err(|_| SegmentError::InvalidSegment {
            name: name.to_string(),
            reason: "size does not fit in memory".into(),
        })?;
        if len == 0 {
            return Err(SegmentError::InvalidSegment {
                name: name.to_string(),
                reason: "segment is empty (its daemon may still be starting)".into(),
            });
        }
        Ok(len)
    }

    /// Start of the mapping (page-aligned, never null).
    pub(crate) fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("mmap never returns null")
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &SegmentName {
        &self.name
    }

    /// How many pages of the mapping were found gone because the file shrank
    /// (see `platform::FaultGuard`): 0 while the segment is whole.
    pub(crate) fn faults(&self) -> &'static AtomicU32 {
        self.guard.faults()
    }

    /// Offset of the lowest page of the mapping found gone, if any.
    pub(crate) fn lowest_fault(&self) -> Option<usize> {
        self.guard.lowest_fault()
    }

    /// The file's size now (another process may have changed it); 0 if it
    /// cannot be read.
    pub(crate) fn file_len(&self) -> u64 {
        platform::file_owner_and_size(&self.file).map_or(0, |(_, len)| len)
    }
}

/// Refuses a segment file not owned by user `owner` (root included: a name
/// squatted by another user is never used). Returns the file's size.
pub(crate) fn check_owner(name: &SegmentName, file: &File, owner: u32) -> SegmentResult<u64> {
    let (uid, len) = platform::file_owner_and_size(file).map_err(|e| name.io_error("stat", e))?;
    if uid != owner {
        return Err(SegmentError::PermissionDenied {
            name: name.to_string(),
            reason: format!(
                "owned by uid {uid}, not by the expected owner ({owner}): refusing a segment another user may control"
            ),
        });
    }
    Ok(len)
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // Released after the fields: the registration, the mapping, the file.
        self.closing = Some(platform::ForkHold::acquire());
        if let Some(tmp) = self.hidden().take() {
            let _ = platform::remove_segment_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_share_bytes_and_remove() {
        let name = SegmentName::parse(&format!("memlink-mmap-test-{}", platform::current_pid())).unwrap();
        let _ = name.remove();
        let a = SharedMemory::create(&name, 8192, 0o600).unwrap();
        assert!(matches!(
            SharedMemory::create(&name, 8192, 0o600),
            Err(SegmentError::AlreadyExists { .. })
        ));
        let b = SharedMemory::open(&name).unwrap();
        assert_eq!(b.len(), 8192);
        // SAFETY: both mappings are 8192 bytes long and alive; offset 100 is in bounds.
        unsafe {
            a.base().as_ptr().add(100).write(42);
            assert_eq!(b.base().as_ptr().add(100).read(), 42);
        }
        name.remove().unwrap();
        assert!(matches!(SharedMemory::open(&name), Err(SegmentError::NotFound { .. })));
    }

    /// The build name holds 64 random bits: another user cannot plant a
    /// file there ahead of `create` (the 0.2 name was `.NAME.PID.0...`).
    #[test]
    fn build_names_cannot_be_guessed_and_a_planted_file_does_not_stop_create() {
        let pid = platform::current_pid();
        let name = SegmentName::parse(&format!("memlink-mmap-planted-{pid}")).unwrap();
        let _ = name.remove();
        let (a, b) = (name.temp_path(), name.temp_path());
        assert_ne!(a, b, "two build names alike");
        let file = name.path().file_name().unwrap().to_string_lossy().into_owned();
        let planted = name
            .path()
            .with_file_name(format!(".{file}.{pid}.0{}", super::super::TEMP_SUFFIX));
        std::fs::write(&planted, b"planted").unwrap();
        let built = SharedMemory::create_hidden(&name, 8192, 0o600).unwrap();
        built.publish().unwrap();
        assert_eq!(SharedMemory::open(&name).unwrap().len(), 8192);
        assert_eq!(
            std::fs::read(&planted).unwrap(),
            b"planted",
            "the planted file is left alone"
        );
        drop(built);
        let _ = std::fs::remove_file(&planted);
        name.remove().unwrap();
    }

    #[test]
    fn a_removed_name_is_free_while_the_old_segment_is_still_mapped() {
        let name = SegmentName::parse(&format!("memlink-mmap-reuse-{}", platform::current_pid())).unwrap();
        let _ = name.remove();
        let old = SharedMemory::create(&name, 8192, 0o600).unwrap();
        let reader = SharedMemory::open(&name).unwrap();
        // SAFETY: both mappings are 8192 bytes long and alive; offset 100 is in bounds.
        unsafe { old.base().as_ptr().add(100).write(7) };
        name.remove().unwrap();
        // Windows keeps an open file's name until its last handle closes,
        // unless the file was moved aside first: the name must be free now.
        let new = SharedMemory::create(&name, 4096, 0o600).unwrap();
        assert_eq!(SharedMemory::open(&name).unwrap().len(), 4096);
        // SAFETY: as above; the old mapping stays valid after the name is gone.
        assert_eq!(unsafe { reader.base().as_ptr().add(100).read() }, 7);
        drop((old, reader, new));
        name.remove().unwrap();
    }
}
