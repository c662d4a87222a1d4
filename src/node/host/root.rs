//! A container's own files, read from the host inside its root (`/proc/PID/root`, resolved
//! with `RESOLVE_IN_ROOT`), for the part of the read script that is not `ip`.

use std::os::fd::OwnedFd;

use crate::node::observe;

use super::Resolved;

/// A container's files as its processes see them: paths resolved in its root
/// (`/proc/PID/root`) with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so that no link
/// inside the container can lead a read out of it. Its `/proc` and `/sys` are the container's
/// own mounts (its PID namespace, its network namespace).
pub struct RootFiles {
    root: std::os::fd::OwnedFd,
    netns: Option<String>,
}

impl RootFiles {
    /// The files under `root` (a directory), in a network namespace whose `readlink` is `netns`.
    pub fn new(root: &std::path::Path, netns: Option<String>) -> Result<RootFiles, String> {
        let root = rustix::fs::open(
            root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
        Ok(RootFiles { root, netns })
    }

    /// The files of the container whose namespace is `resolved` (`/proc/PID/ns/net`: its root
    /// is `/proc/PID/root`).
    pub(super) fn of(resolved: &Resolved) -> Result<RootFiles, String> {
        let root = resolved
            .path
            .parent()
            .and_then(|ns| ns.parent())
            .filter(|_| resolved.path.starts_with("/proc"))
            .map(|proc_pid| proc_pid.join("root"))
            .ok_or_else(|| format!("no container root beside {}", resolved.path.display()))?;
        RootFiles::new(&root, Some(format!("net:[{}]", resolved.inode)))
    }

    fn open(&self, path: &str, flags: rustix::fs::OFlags) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.root,
            path.trim_start_matches('/'),
            flags | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        )
    }

    fn kind(&self, path: &str, follow: bool) -> Option<rustix::fs::FileType> {
        let mut flags = rustix::fs::OFlags::PATH;
        if !follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        let fd = self.open(path, flags).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        Some(rustix::fs::FileType::from_raw_mode(st.st_mode))
    }
}

impl observe::NodeFiles for RootFiles {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        // Non-blocking: a FIFO planted where a file is expected reads as empty, never hangs.
        let Ok(fd) = self.open(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        ) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        if std::fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .is_err()
        {
            return Ok(None);
        }
        if bytes.len() as u64 > limit {
            return Err(format!("{path} is larger than {limit} bytes"));
        }
        Ok(Some(bytes))
    }

    fn exists(&self, path: &str) -> bool {
        self.kind(path, true).is_some()
    }

    fn is_link(&self, path: &str) -> bool {
        self.kind(path, false) == Some(rustix::fs::FileType::Symlink)
    }

    fn is_file(&self, path: &str) -> bool {
        self.kind(path, true) == Some(rustix::fs::FileType::RegularFile)
    }

    fn process_names(&self) -> Vec<Vec<u8>> {
        let Ok(fd) = self.open(
            "proc",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        ) else {
            return Vec::new();
        };
        let Ok(dir) = rustix::fs::Dir::new(fd) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name().to_bytes();
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let pid = String::from_utf8_lossy(name);
            if let Ok(Some(comm)) = self.read(&format!("/proc/{pid}/comm"), 64) {
                names.push(comm);
            }
        }
        names
    }

    fn netns(&self) -> Option<String> {
        self.netns.clone()
    }
}
