//! One writer at a time: an advisory lock on a lock file, held while a command reads, plans and
//! writes.
//!
//! The lock is std's `File::try_lock` (flock(2) on Linux), kept on purpose: the kernel drops it
//! when its holder exits, however it exits (kill -9 included), so a lock left by a killed process
//! is recovered by the next attempt without stale-lock heuristics; it needs no unsafe code; and
//! it is the same lock `flock(1)` takes, so scripts can hold it too. (fcntl record locks would be
//! dropped by closing *any* descriptor of the file, and a lock directory or PID file needs
//! staleness guesses.)
//!
//! The lock file is handled so that a planted path cannot hurt: it is opened with `O_NOFOLLOW`
//! (a symlink is refused, not followed) and `O_CLOEXEC` (children never inherit it); an existing
//! path must be a regular file with one link, owned by the effective user; a file routectl did
//! not create (one without routectl's first line) is locked as it is and never truncated or
//! written, and one holding anything else (a topology given by mistake) is refused. The holder's
//! pid is written only into a file routectl created, so a lock held by another routectl names it.
//! The default lock lives in the private runtime directory (see [`super::runtime`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::local::runtime;

/// The first line of every lock file routectl creates.
pub const MARKER: &str = "routectl lock file";

/// The default lock file: `routectl.lock` in the private runtime directory (created if needed).
pub fn default_path() -> Result<PathBuf, Error> {
    Ok(runtime::private_dir()?.join("routectl.lock"))
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
    ours: bool,
}

impl Lock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.ours {
            // Only the holder's line goes; the marker stays, so the file stays recognisably ours.
            let _ = self.file.set_len(MARKER.len() as u64 + 1);
        }
        let _ = self.file.unlock();
    }
}

/// Opens the lock file without following a symlink, creating it (0600, with the marker) when it
/// does not exist. Returns the file and whether routectl made it.
fn open(path: &Path) -> Result<(File, bool), Error> {
    let shown = || path.display().to_string();
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    let created = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(flags)
        .open(path);
    let mut file = match created {
        Ok(mut f) => {
            let _ = f.write_all(format!("{MARKER}\n").as_bytes());
            return Ok((f, true));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    refused(path, "it is a symlink")
                } else {
                    Error::io(format!("opening the lock file `{}`", shown()), e)
                }
            })?,
        Err(e) => {
            return Err(Error::io(
                format!("creating the lock file `{}`", shown()),
                e,
            ));
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("checking the lock file `{}`", shown()), e))?;
    if !meta.is_file() {
        return Err(refused(path, "it is not a regular file"));
    }
    if meta.uid() != runtime::euid() {
        return Err(refused(
            path,
            &format!(
                "it is owned by uid {}, not by this user (uid {})",
                meta.uid(),
                runtime::euid()
            ),
        ));
    }
    if meta.nlink() != 1 {
        return Err(refused(
            path,
            &format!("it has {} hard links", meta.nlink()),
        ));
    }
    let mut head = Vec::new();
    let _ = (&mut file).take(4096).read_to_end(&mut head);
    let ours = head.starts_with(format!("{MARKER}\n").as_bytes());
    if !ours && !head.is_empty() {
        return Err(refused(
            path,
            "it is not empty and routectl did not create it (is it the right path?)",
        ));
    }
    if ours {
        // Reopen for writing: the holder's line is written into our own file only.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| Error::io(format!("opening the lock file `{}`", shown()), e))?;
        let again = file
            .metadata()
            .map_err(|e| Error::io(format!("checking the lock file `{}`", shown()), e))?;
        if again.ino() != meta.ino() || again.dev() != meta.dev() {
            return Err(refused(path, "it was replaced while routectl opened it"));
        }
        return Ok((file, true));
    }
    Ok((file, false))
}

fn refused(path: &Path, why: &str) -> Error {
    Error::BadLockFile {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Takes the lock at `path`, waiting up to `wait` for another holder; `what` describes the
/// holder to others (for example `apply -f topology.toml`). `on_wait` is called once when the
/// lock is busy, with a description of its holder.
pub fn acquire(
    path: &Path,
    wait: Duration,
    what: &str,
    on_wait: impl FnOnce(&str),
) -> Result<Lock, Error> {
    let (mut file, ours) = open(path)?;
    let started = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if started.elapsed() >= wait {
                    return Err(Error::Locked {
                        path: path.display().to_string(),
                        holder,
                        waited: wait,
                    });
                }
                if let Some(f) = on_wait.take() {
                    f(&holder);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking `{}`", path.display()), e));
            }
        }
    }
    if ours {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let note = format!(
            "{MARKER}\npid {} since {now} (unix time): routectl {what}\n",
            std::process::id()
        );
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = file.write_all(note.as_bytes());
        let _ = file.flush();
    }
    Ok(Lock {
        file,
        path: path.to_path_buf(),
        ours,
    })
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut s);
    let line = s
        .lines()
        .find(|l| l.starts_with("pid "))
        .map(crate::core::text::escape);
    match line {
        Some(l) => l.into_owned(),
        None => "holder unknown: the lock file names no routectl; perhaps `flock` or another \
                 program holds it"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_fails_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routectl.lock");
        let first = acquire(&path, Duration::ZERO, "apply -f a.toml", |_| {}).unwrap();
        let mut waited = None;
        let err = acquire(&path, Duration::from_millis(120), "apply -f b.toml", |h| {
            waited = Some(h.to_string())
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("another routectl holds the lock"),
            "{err}"
        );
        assert!(err.to_string().contains("apply -f a.toml"), "{err}");
        assert!(
            waited
                .unwrap()
                .contains(&format!("pid {}", std::process::id()))
        );
        drop(first);
        acquire(&path, Duration::ZERO, "apply", |_| {}).unwrap();
        // Released: only the marker is left.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{MARKER}\n")
        );
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me\n").unwrap();
        let link = dir.path().join("routectl.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = acquire(&link, Duration::ZERO, "apply", |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("it is a symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    }

    #[test]
    fn a_file_routectl_did_not_create_is_never_truncated() {
        let dir = tempfile::tempdir().unwrap();
        // A topology given as the lock by mistake: refused, untouched.
        let topo = dir.path().join("topology.toml");
        std::fs::write(&topo, "[cluster]\n").unwrap();
        let e = acquire(&topo, Duration::ZERO, "apply", |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("routectl did not create it"), "{e}");
        assert_eq!(std::fs::read_to_string(&topo).unwrap(), "[cluster]\n");
        // An empty file someone made (`flock FILE`): locked, never written.
        let empty = dir.path().join("empty.lock");
        std::fs::write(&empty, "").unwrap();
        let l = acquire(&empty, Duration::ZERO, "apply", |_| {}).unwrap();
        drop(l);
        assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
        // A directory or a device is not a lock file.
        let e = acquire(Path::new("/dev/null"), Duration::ZERO, "apply", |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A second name for a file (a hard link) is refused.
        let linked = dir.path().join("linked.lock");
        std::fs::hard_link(&topo, &linked).unwrap();
        let e = acquire(&linked, Duration::ZERO, "apply", |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("hard links"), "{e}");
    }
}
