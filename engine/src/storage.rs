//! The I/O seam. The engine touches files only through `Storage` and `StorageFile`.
//!
//! `GlommioStorage` is the real thing: buffered writes with pwrite on the core thread,
//! `fdatasync` and the rest through glommio's io_uring, reads through a memmap2 mapping of the
//! same file (the page cache keeps them coherent). `SimStorage` keeps files in memory, models what survives a crash (only synced
//! bytes and synced directory entries are certain; unsynced operations survive as a random
//! prefix, the last one possibly torn, or as a random subset of pages), and injects faults: a crash at the Nth operation,
//! ENOSPC, bit flips. Everything here is single-threaded (one core owns its files).
//!
//! Beside the traits sit the small-file helpers built only on them (`write_file_synced`,
//! `write_file_atomic`, `read_file`): the seal marker, rebuilt indexes and the server's
//! catalog use them, and they belong to no one file format.

#![allow(async_fn_in_trait)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::error::Result;

/// A directory tree of files.
pub trait Storage: Clone + 'static {
    type File: StorageFile;
    /// Creates a directory and any missing parents, durably: each new directory's entry is
    /// synced into its parent.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates an empty file, replacing any file of that name.
    async fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for reading and writing.
    async fn open(&self, path: &Path) -> io::Result<Self::File>;
    async fn remove(&self, path: &Path) -> io::Result<()>;
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes creations, removals and renames inside `path` durable.
    async fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in a directory, unsorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
}

/// One open file.
pub trait StorageFile: 'static {
    /// Writes all of `data` at `position` (into the page cache; not yet durable).
    async fn write_at(&self, position: u64, data: Vec<u8>) -> io::Result<()>;
    /// `fdatasync`: everything written before is durable when this returns.
    async fn sync(&self) -> io::Result<()>;
    /// Grows the file to `len` bytes with preallocated, zero-reading space (fallocate).
    async fn allocate(&self, len: u64) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A view of `len` bytes at `position`. Must lie inside the file.
    fn read(&self, position: u64, len: usize) -> io::Result<Bytes>;
}

/// Creates (or replaces) `path` with `bytes` and syncs it. Not atomic: a crash can leave the
/// file missing, empty or torn; callers that need all-or-nothing use [`write_file_atomic`].
pub(crate) async fn write_file_synced<S: Storage>(
    storage: &S,
    path: &Path,
    bytes: Vec<u8>,
) -> Result<()> {
    let file = storage.create(path).await?;
    file.write_at(0, bytes).await?;
    file.sync().await?;
    Ok(())
}

/// Writes a small file atomically and durably: temp file, sync, rename, sync the directory.
pub async fn write_file_atomic<S: Storage>(
    storage: &S,
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    write_file_synced(storage, &tmp, bytes).await?;
    storage.rename(&tmp, &dir.join(name)).await?;
    storage.sync_dir(dir).await?;
    Ok(())
}

/// Reads a whole small file, or `None` if it does not exist.
pub async fn read_file<S: Storage>(storage: &S, path: &Path) -> Result<Option<Bytes>> {
    if !storage.exists(path) {
        return Ok(None);
    }
    let file = storage.open(path).await?;
    Ok(Some(file.read(0, file.len() as usize)?))
}

fn glommio_error<T>(error: glommio::GlommioError<T>) -> io::Error {
    match error {
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        glommio::GlommioError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Real files: glommio io_uring for writes and syncs, memmap2 for reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioStorage;

pub struct GlommioFile {
    file: glommio::io::BufferedFile,
    len: Cell<u64>,
    /// The whole file mapped read-only; replaced when the file grows. Old views stay valid:
    /// each `Bytes` keeps its own mapping alive.
    map: RefCell<Option<Bytes>>,
}

impl GlommioFile {
    fn new(file: glommio::io::BufferedFile, len: u64) -> GlommioFile {
        GlommioFile { file, len: Cell::new(len), map: RefCell::new(None) }
    }

    fn mapping(&self, end: u64) -> io::Result<Bytes> {
        if let Some(map) = self.map.borrow().as_ref()
            && map.len() as u64 >= end
        {
            return Ok(map.clone());
        }
        let len = self.len.get();
        if end > len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"));
        }
        // SAFETY: the file is only ever written through this process's own appends, which never
        // rewrite bytes a reader was given (segments are append-only; truncation happens only
        // below readers' view during recovery, before any reader exists).
        let map =
            unsafe { memmap2::MmapOptions::new().len(len as usize).map(self.file.as_raw_fd())? };
        let bytes = Bytes::from_owner(map);
        *self.map.borrow_mut() = Some(bytes.clone());
        Ok(bytes)
    }
}

impl StorageFile for GlommioFile {
    async fn write_at(&self, position: u64, data: Vec<u8>) -> io::Result<()> {
        // A buffered write only copies into the page cache, so it is done right here with
        // pwrite(2). Through io_uring, this kernel punts every buffered write to an io-wq
        // worker thread: a wake-up and two context switches per flush on the acknowledgement
        // path, and millisecond tails when the two cores are busy. The fdatasync, which does
        // wait for the disk, stays on io_uring.
        let fd = self.file.as_raw_fd();
        let mut done = 0usize;
        while done < data.len() {
            let rest = &data[done..];
            let at = libc::off_t::try_from(position + done as u64)
                .map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
            // SAFETY: `fd` stays open while `self.file` lives; `rest` is valid for reads of
            // `rest.len()` bytes.
            let written = unsafe { libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), at) };
            if written < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if written == 0 {
                // No progress on a regular file: the file system is out of space.
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            done += written as usize;
        }
        let end = position + data.len() as u64;
        if end > self.len.get() {
            self.len.set(end);
        }
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(glommio_error)
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        if len <= self.len.get() {
            return Ok(());
        }
        self.file.pre_allocate(len, false).await.map_err(glommio_error)?;
        self.len.set(len);
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(glommio_error)?;
        self.len.set(len);
        *self.map.borrow_mut() = None;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len.get()
    }

    fn read(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let end = position + len as u64;
        let map = self.mapping(end)?;
        Ok(map.slice(position as usize..end as usize))
    }
}

/// glommio opens a relative path against an invalid directory descriptor (EBADF), so every
/// path handed to it is made absolute first, against the current directory.
fn absolute(path: &Path) -> io::Result<std::borrow::Cow<'_, Path>> {
    if path.is_absolute() {
        Ok(std::borrow::Cow::Borrowed(path))
    } else {
        std::path::absolute(path).map(std::borrow::Cow::Owned)
    }
}

impl Storage for GlommioStorage {
    type File = GlommioFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let missing: Vec<PathBuf> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(path)?;
        // Each new directory's entry must survive a power loss, or a shard's directory could
        // vanish while the catalog still names it.
        for dir in &missing {
            match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => self.sync_dir(parent).await?,
                _ => self.sync_dir(Path::new(".")).await?,
            }
        }
        Ok(())
    }

    async fn create(&self, path: &Path) -> io::Result<GlommioFile> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(absolute(path)?)
            .await
            .map_err(glommio_error)?;
        Ok(GlommioFile::new(file, 0))
    }

    async fn open(&self, path: &Path) -> io::Result<GlommioFile> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .buffered_open(absolute(path)?)
            .await
            .map_err(glommio_error)?;
        let len = file.file_size().await.map_err(glommio_error)?;
        Ok(GlommioFile::new(file, len))
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = glommio::io::Directory::open(absolute(path)?).await.map_err(glommio_error)?;
        dir.sync().await.map_err(glommio_error)?;
        dir.close().await.map_err(glommio_error)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated storage.

#[derive(Clone, Debug)]
enum SimOp {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
struct SimFileData {
    /// What a reader sees now.
    current: Vec<u8>,
    /// What is certain to survive a crash.
    durable: Vec<u8>,
    /// Operations since the last sync, in order.
    unsynced: Vec<SimOp>,
}

impl SimFileData {
    fn apply(bytes: &mut Vec<u8>, op: &SimOp) {
        match op {
            SimOp::Write(pos, data) => {
                let end = *pos as usize + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*pos as usize..end].copy_from_slice(data);
            }
            SimOp::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }
}

type SimFileRef = Rc<RefCell<SimFileData>>;

#[derive(Debug, Default)]
struct SimFs {
    /// The namespace as it is now.
    names: BTreeMap<PathBuf, SimFileRef>,
    /// The namespace as it is on disk (updated by `sync_dir`).
    durable_names: BTreeMap<PathBuf, SimFileRef>,
    dirs: BTreeSet<PathBuf>,
    operations: u64,
    crash_at_operation: Option<u64>,
    crashed: bool,
    disk_full: bool,
    /// File syncs that fail (EIO, nothing made durable) before syncs work again.
    failing_syncs: u32,
    /// Directory syncs that fail (EIO) after making the entries durable anyway.
    failing_dir_syncs: u32,
    syncs: u64,
    /// Makes every sync yield to the executor once, so concurrent appends can pile up behind
    /// it (tests of group commit).
    yield_on_sync: bool,
}

/// In-memory storage with crash and fault injection, for tests.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    fs: Rc<RefCell<SimFs>>,
}

pub struct SimFile {
    fs: Rc<RefCell<SimFs>>,
    data: SimFileRef,
}

impl SimFs {
    /// Counts an operation that can fail, and fails it if a fault is due.
    fn operation(&mut self, consumes_space: bool) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other("simulated crash: storage is down"));
        }
        self.operations += 1;
        if self.crash_at_operation == Some(self.operations) {
            self.crashed = true;
            return Err(io::Error::other("simulated crash"));
        }
        if consumes_space && self.disk_full {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

impl SimStorage {
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// Operations counted so far (writes, syncs, allocations, truncations, namespace changes).
    pub fn operations(&self) -> u64 {
        self.fs.borrow().operations
    }

    /// The `n`th operation from now on (1-based, counted from the start) fails as a crash, and
    /// every later one fails too, until `crash_image`.
    pub fn crash_at_operation(&self, n: u64) {
        self.fs.borrow_mut().crash_at_operation = Some(n);
    }

    pub fn crashed(&self) -> bool {
        self.fs.borrow().crashed
    }

    /// File syncs done so far.
    pub fn syncs(&self) -> u64 {
        self.fs.borrow().syncs
    }

    pub fn set_yield_on_sync(&self, yield_on_sync: bool) {
        self.fs.borrow_mut().yield_on_sync = yield_on_sync;
    }

    /// The next `n` file syncs fail with EIO and make nothing durable (a disk error, not a crash).
    pub fn fail_next_syncs(&self, n: u32) {
        self.fs.borrow_mut().failing_syncs = n;
    }

    /// The next `n` directory syncs fail with EIO, although they made the directory's entries
    /// durable (a file system may write the metadata and still report an error).
    pub fn fail_next_dir_syncs(&self, n: u32) {
        self.fs.borrow_mut().failing_dir_syncs = n;
    }

    pub fn set_disk_full(&self, full: bool) {
        self.fs.borrow_mut().disk_full = full;
    }

    /// What a machine would find on disk after losing power now: synced bytes and directory
    /// entries, plus a seeded random prefix of each file's unsynced operations, the last one
    /// possibly torn.
    pub fn crash_image(&self, seed: u64) -> SimStorage {
        let fs = self.fs.borrow();
        let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        let mut image = SimFs { dirs: fs.dirs.clone(), ..SimFs::default() };
        let mut copies: BTreeMap<*const RefCell<SimFileData>, SimFileRef> = BTreeMap::new();
        for (path, file) in &fs.durable_names {
            let key = Rc::as_ptr(file);
            let copy = copies
                .entry(key)
                .or_insert_with(|| {
                    let file = file.borrow();
                    let mut bytes = file.durable.clone();
                    let keep = (next() % (file.unsynced.len() as u64 + 1)) as usize;
                    for (i, op) in file.unsynced.iter().take(keep).enumerate() {
                        if i + 1 == keep
                            && next() % 2 == 0
                            && let SimOp::Write(pos, data) = op
                        {
                            let cut = (next() % (data.len() as u64 + 1)) as usize;
                            SimFileData::apply(
                                &mut bytes,
                                &SimOp::Write(*pos, data[..cut].to_vec()),
                            );
                            continue;
                        }
                        SimFileData::apply(&mut bytes, op);
                    }
                    Rc::new(RefCell::new(SimFileData {
                        current: bytes.clone(),
                        durable: bytes,
                        unsynced: Vec::new(),
                    }))
                })
                .clone();
            image.names.insert(path.clone(), copy.clone());
            image.durable_names.insert(path.clone(), copy);
        }
        SimStorage { fs: Rc::new(RefCell::new(image)) }
    }

    /// Like `crash_image`, but the unsynced writes of each file survive as a seeded random
    /// subset of `page_bytes`-sized pages, not as a prefix: page-cache writeback may write a
    /// later page of a write before an earlier one. The file's length is either its durable or
    /// its current length.
    pub fn crash_image_scattered(&self, seed: u64, page_bytes: usize) -> SimStorage {
        assert!(page_bytes > 0);
        let fs = self.fs.borrow();
        let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        let mut image = SimFs { dirs: fs.dirs.clone(), ..SimFs::default() };
        let mut copies: BTreeMap<*const RefCell<SimFileData>, SimFileRef> = BTreeMap::new();
        for (path, file) in &fs.durable_names {
            let copy = copies
                .entry(Rc::as_ptr(file))
                .or_insert_with(|| {
                    let file = file.borrow();
                    let mut bytes = file.durable.clone();
                    if !file.unsynced.is_empty() {
                        let len =
                            if next() % 2 == 0 { file.current.len() } else { file.durable.len() };
                        bytes.resize(len, 0);
                        for start in (0..len).step_by(page_bytes) {
                            let end = (start + page_bytes).min(len);
                            if next() % 2 == 0 {
                                for (at, byte) in bytes[start..end].iter_mut().enumerate() {
                                    *byte = file.current.get(start + at).copied().unwrap_or(0);
                                }
                            }
                        }
                    }
                    Rc::new(RefCell::new(SimFileData {
                        current: bytes.clone(),
                        durable: bytes,
                        unsynced: Vec::new(),
                    }))
                })
                .clone();
            image.names.insert(path.clone(), copy.clone());
            image.durable_names.insert(path.clone(), copy);
        }
        SimStorage { fs: Rc::new(RefCell::new(image)) }
    }

    /// Flips one bit of a file, both in what readers see and on "disk".
    pub fn flip_bit(&self, path: &Path, position: u64, bit: u8) {
        let fs = self.fs.borrow();
        let file = fs.names.get(path).expect("flip_bit: no such file");
        let mut file = file.borrow_mut();
        let mask = 1u8 << (bit % 8);
        file.current[position as usize] ^= mask;
        if (position as usize) < file.durable.len() {
            file.durable[position as usize] ^= mask;
        }
    }

    /// Removes a file at once, durably (as an operator or a disk error might).
    pub fn delete_now(&self, path: &Path) {
        let mut fs = self.fs.borrow_mut();
        fs.names.remove(path);
        fs.durable_names.remove(path);
    }

    /// The current bytes of a file.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs.borrow().names.get(path).map(|f| f.borrow().current.clone())
    }

    pub fn file_names(&self) -> Vec<PathBuf> {
        self.fs.borrow().names.keys().cloned().collect()
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

impl Storage for SimStorage {
    type File = SimFile;

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.operation(false)?;
        for ancestor in path.ancestors() {
            fs.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    async fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut fs = self.fs.borrow_mut();
        fs.operation(false)?;
        let data: SimFileRef = Rc::default();
        fs.names.insert(path.to_path_buf(), data.clone());
        Ok(SimFile { fs: self.fs.clone(), data })
    }

    async fn open(&self, path: &Path) -> io::Result<SimFile> {
        let fs = self.fs.borrow();
        if fs.crashed {
            return Err(io::Error::other("simulated crash: storage is down"));
        }
        let data = fs.names.get(path).ok_or_else(|| not_found(path))?.clone();
        Ok(SimFile { fs: self.fs.clone(), data })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.operation(false)?;
        fs.names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.operation(false)?;
        let file = fs.names.remove(from).ok_or_else(|| not_found(from))?;
        fs.names.insert(to.to_path_buf(), file);
        Ok(())
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.operation(false)?;
        let in_dir = |p: &Path| p.parent() == Some(path);
        let fs = &mut *fs;
        fs.durable_names.retain(|p, _| !in_dir(p));
        for (p, f) in &fs.names {
            if in_dir(p) {
                fs.durable_names.insert(p.clone(), f.clone());
            }
        }
        if fs.failing_dir_syncs > 0 {
            fs.failing_dir_syncs -= 1;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.borrow();
        if !fs.dirs.contains(path) {
            return Err(not_found(path));
        }
        let mut names: Vec<String> = fs
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect();
        for dir in &fs.dirs {
            if dir.parent() == Some(path)
                && let Some(name) = dir.file_name().and_then(|n| n.to_str())
            {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        let fs = self.fs.borrow();
        fs.names.contains_key(path) || fs.dirs.contains(path)
    }
}

impl StorageFile for SimFile {
    async fn write_at(&self, position: u64, data: Vec<u8>) -> io::Result<()> {
        let grows = position + data.len() as u64 > self.data.borrow().current.len() as u64;
        self.fs.borrow_mut().operation(grows)?;
        let op = SimOp::Write(position, data);
        let mut file = self.data.borrow_mut();
        SimFileData::apply(&mut file.current, &op);
        file.unsynced.push(op);
        Ok(())
    }

    async fn sync(&self) -> io::Result<()> {
        if self.fs.borrow().yield_on_sync {
            YieldOnce(false).await;
        }
        self.fs.borrow_mut().operation(false)?;
        {
            let mut fs = self.fs.borrow_mut();
            if fs.failing_syncs > 0 {
                fs.failing_syncs -= 1;
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
        }
        self.fs.borrow_mut().syncs += 1;
        let mut file = self.data.borrow_mut();
        file.durable = file.current.clone();
        file.unsynced.clear();
        Ok(())
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        if len <= self.len() {
            return Ok(());
        }
        self.fs.borrow_mut().operation(true)?;
        let op = SimOp::SetLen(len);
        let mut file = self.data.borrow_mut();
        SimFileData::apply(&mut file.current, &op);
        file.unsynced.push(op);
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.fs.borrow_mut().operation(false)?;
        let op = SimOp::SetLen(len);
        let mut file = self.data.borrow_mut();
        SimFileData::apply(&mut file.current, &op);
        file.unsynced.push(op);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.borrow().current.len() as u64
    }

    fn read(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let file = self.data.borrow();
        let end = position as usize + len;
        if end > file.current.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"));
        }
        Ok(Bytes::copy_from_slice(&file.current[position as usize..end]))
    }
}

/// Returns `Pending` once (waking itself), then `Ready`.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
