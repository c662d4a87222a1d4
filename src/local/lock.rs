//! One writer at a time: an advisory `flock` on a lock file, held while a command reads, plans
//! and writes. The kernel drops the lock when its holder exits, however it exits, so a lock left
//! by a killed process is recovered by the next `flock` without any stale-lock heuristics.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::io(
                format!("creating the lock directory `{}`", dir.display()),
                e,
            )
        })?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("opening the lock file `{}`", path.display()), e))?;
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let note = format!(
        "pid {} since {now} (unix time): routectl {what}\n",
        std::process::id()
    );
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.write_all(note.as_bytes());
    let _ = file.flush();
    Ok(Lock {
        file,
        path: path.to_path_buf(),
    })
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(512).read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        "holder unknown".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_fails_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/routectl.lock");
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
    }
}
