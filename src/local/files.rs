//! Local files: every read bounded and never blocking (regular files only where a file is
//! expected), every write atomic (a random temp name created with `O_EXCL` beside the target,
//! written, fsynced, renamed over the target, then the directory fsynced), and a snapshot
//! directory replaced as a whole.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::core::topology::{self, MAX_FILE_BYTES, Topology, TransportKind};
use crate::error::{Error, Problem, Problems};

/// The most routectl reads from a saved plan file.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;
/// The most routectl reads from a `discover` input (a file or stdin).
pub const MAX_INPUT_BYTES: u64 = 256 << 20;
/// The most routectl reads from one snapshot file (the same bound as a node command's output).
pub const MAX_SNAPSHOT_BYTES: u64 = 256 << 20;

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed.
    Io(std::io::Error),
    /// The path is not a regular file (a FIFO, a device, a directory, a socket).
    NotRegular(&'static str),
    /// The file holds more than the limit.
    TooLarge(u64),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            ReadError::TooLarge(limit) => {
                write!(
                    f,
                    "it holds more than {limit} bytes (the most routectl reads)"
                )
            }
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> std::io::Error {
        match e {
            ReadError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

fn kind_of(ft: &std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads at most `limit` bytes of the regular file at `path`. It is opened with `O_NONBLOCK`
/// (opening a FIFO never waits for a writer) and checked on the open descriptor before anything
/// is read: a FIFO, device, directory or socket is refused; a file larger than `limit` too.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    read_limited(file, limit)
}

/// Reads at most `limit` bytes from any reader (stdin); more is an error.
pub fn read_limited(r: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads and validates a topology file. `transport` overrides the file's `cluster.transport`.
pub fn load_topology(path: &Path, transport: Option<TransportKind>) -> Result<Topology, Error> {
    let source = path.display().to_string();
    let problem = |message: String| {
        Error::Topology(Problems(vec![Problem {
            file: source.clone(),
            line: 1,
            column: 1,
            message,
        }]))
    };
    let bytes = match read_bounded(path, MAX_FILE_BYTES as u64) {
        Ok(b) => b,
        Err(ReadError::Io(e)) => {
            return Err(Error::TopologyRead {
                path: source.clone(),
                source: e,
            });
        }
        Err(ReadError::TooLarge(_)) => {
            return Err(problem(format!(
                "file holds more than {MAX_FILE_BYTES} bytes; a topology may be at most \
                 {MAX_FILE_BYTES} bytes"
            )));
        }
        Err(e @ ReadError::NotRegular(_)) => {
            return Err(problem(format!(
                "{e}; a topology must be a regular file (at most {MAX_FILE_BYTES} bytes)"
            )));
        }
    };
    let mut t = topology::parse(&bytes, &source, transport).map_err(Error::Topology)?;
    t.resolve_relative_to(&parent_of(path));
    Ok(t)
}

/// Reads a saved plan file (`routectl plan --out FILE`): its binding, the topology it carries,
/// and the options.
pub fn load_saved_plan(path: &Path) -> Result<crate::core::saved::Saved, Error> {
    let shown = path.display().to_string();
    let bytes = read_bounded(path, MAX_PLAN_BYTES)
        .map_err(|e| Error::io(format!("reading the plan file `{shown}`"), e.into()))?;
    let mut saved = crate::core::saved::parse(&bytes, &shown)?;
    saved
        .topology
        .resolve_relative_to(&parent_of(Path::new(&saved.binding.topology_path)));
    Ok(saved)
}

/// Writes `bytes` to `path` atomically: a temp file with a random name is created beside it
/// (`O_EXCL`, so a planted file or symlink at that name is never opened), written, fsynced and
/// renamed over `path` (a symlink at `path` is replaced, never followed); then the directory
/// is fsynced so the rename survives a crash. Readers see the old file or the new one, never
/// a part. With `replace` false an existing `path` is left alone and the write fails.
pub fn write_atomic(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    if replace {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    sync_dir(&dir)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The file that marks a directory as a complete snapshot written by `routectl show --save`.
pub const SNAPSHOT_MANIFEST: &str = "routectl-snapshot.txt";

/// Whether `dir` may be replaced by a snapshot: absent, or a directory (not a symlink) of
/// nothing but `*.json` files and the manifest.
fn replaceable(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it exists and is not a directory (a symlink is not followed)",
            ));
        }
        Ok(_) => {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let n = entry.file_name().to_string_lossy().into_owned();
                if !(entry.file_type()?.is_file()
                    && (n.ends_with(".json") || n == SNAPSHOT_MANIFEST))
                {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "it holds `{n}`, which is not part of a routectl snapshot; refusing \
                             to replace it (choose an empty or new directory)"
                        ),
                    ));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Writes `files` and then the manifest (a directory with it is complete) into `new`, each
/// fsynced.
fn write_snapshot(new: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let mut manifest = String::from("routectl snapshot: complete\n");
    for (file, bytes) in files {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(new.join(file))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        manifest.push_str(file);
        manifest.push('\n');
    }
    // The manifest last: a directory with it is complete.
    let mut m = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(new.join(SNAPSHOT_MANIFEST))?;
    m.write_all(manifest.as_bytes())?;
    m.sync_all()?;
    Ok(())
}

/// Replaces the directory `dir` as a whole with `files` (name, contents) plus a manifest: they
/// are written into a new temp directory beside `dir`, fsynced, and renamed into place; the old
/// directory is moved aside first and removed after. A failure leaves the old snapshot as it
/// was, never old and new files mixed. An existing `dir` is replaced only when it looks like a
/// snapshot (nothing but `*.json` files and the manifest), so a wrong path cannot wipe a
/// directory of other files.
pub fn replace_dir(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let parent = parent_of(dir);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".to_string());
    replaceable(dir)?;
    let new = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".new")
        .tempdir_in(&parent)?;
    write_snapshot(new.path(), files)?;
    std::fs::set_permissions(new.path(), std::fs::Permissions::from_mode(0o755))?;
    sync_dir(new.path())?;
    let new_path = new.keep();
    let old = if dir.exists() {
        let aside = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".old")
            .tempdir_in(&parent)?;
        let aside_path = aside.keep();
        // rename(2) replaces an empty directory: the fresh empty one just made.
        if let Err(e) = std::fs::rename(dir, &aside_path) {
            let _ = std::fs::remove_dir(&aside_path);
            let _ = std::fs::remove_dir_all(&new_path);
            return Err(e);
        }
        Some(aside_path)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&new_path, dir) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, dir);
        }
        let _ = std::fs::remove_dir_all(&new_path);
        return Err(e);
    }
    sync_dir(&parent)?;
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_fifo_is_refused_without_reading_or_blocking() {
        // Regression: `routectl validate -f /dev/zero` read until memory ran out, and a FIFO
        // as the topology blocked in open() forever.
        let e = load_topology(Path::new("/dev/zero"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/zero:1:1: it is a character device, not a regular file"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = read_bounded(&fifo, 10).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
    }

    #[test]
    fn a_large_regular_file_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES as u64 + 1).unwrap();
        let e = load_topology(&big, None).unwrap_err().to_string();
        assert!(e.contains("file holds more than 16777216 bytes"), "{e}");
    }

    #[test]
    fn an_atomic_write_replaces_a_planted_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        std::fs::write(&precious, "keep\n").unwrap();
        let out = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&precious, &out).unwrap();
        write_atomic(&out, b"new\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep\n");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new\n");
        assert!(
            !std::fs::symlink_metadata(&out)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // Without replace, an existing file stays.
        assert!(write_atomic(&out, b"x", false).is_err());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new\n");
    }

    #[test]
    fn a_snapshot_directory_is_replaced_whole_and_only_if_it_is_one() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("snap");
        replace_dir(&dir, &[("a.json".into(), b"[]".to_vec())]).unwrap();
        replace_dir(&dir, &[("b.json".into(), b"[1]".to_vec())]).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["b.json", SNAPSHOT_MANIFEST]);
        let other = base.path().join("home");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        let e = replace_dir(&other, &[]).unwrap_err().to_string();
        assert!(e.contains("notes.txt"), "{e}");
        assert!(other.join("notes.txt").exists());
        // Nothing left beside them.
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 2);
    }
}
