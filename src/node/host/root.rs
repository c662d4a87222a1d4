//! A container's own files, read and written from the host inside its root (`/proc/PID/root`,
//! resolved with `RESOLVE_IN_ROOT`): the part of the read script that is not `ip`, and the
//! last-applied record an apply stores.
//!
//! Every byte there is the container's: a file is read only when it is a regular file (looked at
//! through an `O_PATH` handle first, so that a device, FIFO or socket planted there is never
//! opened), then opened through that handle without becoming routectl's controlling terminal
//! (`O_NOCTTY`) and without blocking (`O_NONBLOCK`), and read at most a given size. A write never follows a link
//! (`RESOLVE_NO_SYMLINKS` to its directory, `O_NOFOLLOW` and `O_EXCL` for its temporary file),
//! goes to a fresh temporary file renamed over the target, and is owned by the container's root
//! as its uid and gid maps say.

use std::os::fd::OwnedFd;

use crate::node::request::FileChange;

use super::Resolved;

/// A container's files as its processes see them: paths resolved in its root
/// (`/proc/PID/root`) with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so that no link
/// inside the container can lead a read out of it. Its `/proc` and `/sys` are the container's
/// own mounts (its PID namespace, its network namespace).
pub struct RootFiles {
    root: std::os::fd::OwnedFd,
}

impl RootFiles {
    /// The files under `root` (a directory).
    pub fn new(root: &std::path::Path) -> Result<RootFiles, String> {
        let root = rustix::fs::open(
            root,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
        Ok(RootFiles { root })
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
        RootFiles::new(&root)
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

/// Who owns what routectl creates in a container: the host ids its root maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The host uid of the container's uid 0.
    pub uid: u32,
    /// The host gid of the container's gid 0.
    pub gid: u32,
}

impl Owner {
    /// The owner of a container whose init is `pid`, from `/proc/PID/uid_map` and `gid_map`.
    pub fn of_pid(pid: &str) -> Result<Owner, String> {
        let map = |which: &str| -> Result<u32, String> {
            let path = format!("/proc/{pid}/{which}");
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            root_of_map(&text).ok_or_else(|| format!("{path} maps no id 0"))
        };
        Ok(Owner {
            uid: map("uid_map")?,
            gid: map("gid_map")?,
        })
    }
}

/// The outside id that id 0 maps to in a `uid_map`/`gid_map` (`inside outside count` lines).
pub fn root_of_map(text: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match f.as_slice() {
            [0, outside, count] if *count > 0 => Some(*outside),
            _ => None,
        }
    })
}

impl RootFiles {
    /// Opens (making it, mode 0700, owned by `owner`, when missing) the directory `path` in the
    /// root; no component may be a symbolic link, and the last must be owned by `owner`.
    fn dir(&self, path: &str, owner: Owner) -> Result<OwnedFd, String> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let (parent, name) = path
            .trim_start_matches('/')
            .rsplit_once('/')
            .ok_or_else(|| format!("{path} has no parent directory"))?;
        let strict =
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let up = rustix::fs::openat2(&self.root, parent, flags, Mode::empty(), strict)
            .map_err(|e| format!("/{parent}: {e}"))?;
        let fd = match rustix::fs::openat(&up, name, flags, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) => {
                rustix::fs::mkdirat(&up, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| format!("{path}: {e}"))?;
                let fd = rustix::fs::openat(&up, name, flags, Mode::empty())
                    .map_err(|e| format!("{path}: {e}"))?;
                chown(&fd, owner).map_err(|e| format!("{path}: {e}"))?;
                fd
            }
            other => other.map_err(|e| format!("{path}: {e}"))?,
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| format!("{path}: {e}"))?;
        if st.st_uid != owner.uid {
            return Err(format!(
                "{path} is not a directory of the container's root (owner {})",
                st.st_uid
            ));
        }
        Ok(fd)
    }

    /// [`RootFiles::put`], done as the container's root would do it: in a thread of its own
    /// whose effective uid and gid are `owner`'s (and die with it). A container root on an
    /// idmapped mount (Incus) refuses a write by a uid its mapping does not cover, the host's
    /// root included (`EOVERFLOW`); the owner's ids are what the mapping expects, and what a
    /// plain shifted root holds on disk.
    pub fn put_as_owner(
        &self,
        path: &str,
        change: &FileChange,
        owner: Owner,
    ) -> Result<(), String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                if owner.uid != 0 || owner.gid != 0 {
                    rustix::thread::set_thread_res_gid(
                        None,
                        Some(rustix::fs::Gid::from_raw(owner.gid)),
                        None,
                    )
                    .map_err(|e| format!("cannot take gid {}: {e}", owner.gid))?;
                    rustix::thread::set_thread_res_uid(
                        None,
                        Some(rustix::fs::Uid::from_raw(owner.uid)),
                        None,
                    )
                    .map_err(|e| format!("cannot take uid {}: {e}", owner.uid))?;
                }
                self.put(path, change, owner)
            })
            .join()
            .unwrap_or_else(|_| Err("the writing thread panicked".to_string()))
        })
    }

    /// Writes (or removes) the file `path` in the root: its directory and the one above are
    /// routectl's own (made 0700 when missing); the bytes go to a fresh temporary file there,
    /// owned by `owner`, flushed and renamed over `path`.
    pub fn put(&self, path: &str, change: &FileChange, owner: Owner) -> Result<(), String> {
        use rustix::fs::{Mode, OFlags};
        let (dir, name) = path
            .rsplit_once('/')
            .ok_or_else(|| format!("{path} has no directory"))?;
        if let Some((grand, _)) = dir.rsplit_once('/')
            && !grand.is_empty()
        {
            self.dir(grand, owner)?;
        }
        let dirfd = self.dir(dir, owner)?;
        let bytes = match change {
            FileChange::Keep => return Ok(()),
            FileChange::Remove => {
                return match rustix::fs::unlinkat(&dirfd, name, rustix::fs::AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(format!("{path}: {e}")),
                };
            }
            FileChange::Write(b) => b,
        };
        let tmp = format!(".{name}.{}", crate::node::request::temp_suffix());
        let fd = rustix::fs::openat(
            &dirfd,
            tmp.as_str(),
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| format!("{dir}/{tmp}: {e}"))?;
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            chown(&fd, owner)?;
            let mut f = std::fs::File::from(fd);
            f.write_all(bytes)?;
            f.sync_all()?;
            rustix::fs::renameat(&dirfd, tmp.as_str(), &dirfd, name)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&dirfd, tmp.as_str(), rustix::fs::AtFlags::empty());
            return Err(format!("{path}: {e}"));
        }
        Ok(())
    }
}

/// Whether `fd` is a regular file.
fn regular_file(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
        .unwrap_or(false)
}

/// Whether two descriptors are the same file (device and inode).
fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino),
        _ => false,
    }
}

fn chown(fd: &OwnedFd, owner: Owner) -> rustix::io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(owner.uid)),
        Some(rustix::fs::Gid::from_raw(owner.gid)),
    )
}

impl super::beside::NodeFiles for RootFiles {
    fn read(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        use rustix::fs::OFlags;
        use std::io::Read;
        use std::os::fd::AsRawFd;
        // First a handle that opens nothing (`O_PATH`): a device, FIFO or socket planted there
        // reads as nothing and is never opened at all.
        let Ok(handle) = self.open(path, OFlags::PATH) else {
            return Ok(None);
        };
        if !regular_file(&handle) {
            return Ok(None);
        }
        // Then that very file opened for reading through its handle, never as a terminal and
        // never waiting, and checked again.
        let Ok(fd) = rustix::fs::open(
            format!("/proc/self/fd/{}", handle.as_raw_fd()),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return Ok(None);
        };
        if !regular_file(&fd) || !same_file(&handle, &fd) {
            return Ok(None);
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::host::NodeFiles;

    fn me() -> Owner {
        Owner {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }

    #[test]
    fn the_root_of_a_map_is_what_id_0_maps_to() {
        assert_eq!(root_of_map("         0          0 4294967295\n"), Some(0));
        assert_eq!(root_of_map("0 1000000 1000000000\n"), Some(1_000_000));
        assert_eq!(root_of_map("1 100000 65535\n0 1000 1\n"), Some(1000));
        assert_eq!(root_of_map("1 100000 65535\n"), None);
        assert_eq!(root_of_map(""), None);
    }

    /// A write lands whole under a fresh name renamed over the target, in directories made
    /// 0700; a link anywhere on the way is refused and nothing is written through it; a read
    /// takes regular files only (a FIFO reads as nothing, without blocking).
    #[test]
    fn writes_stay_in_the_root_and_reads_take_regular_files_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("run")).unwrap();
        let files = RootFiles::new(root.path()).unwrap();
        let path = "/run/routectl/last-applied/w0.json";
        files
            .put(path, &FileChange::Write(b"{\"v\":2}\n".to_vec()), me())
            .unwrap();
        let on_disk = root.path().join("run/routectl/last-applied/w0.json");
        assert_eq!(std::fs::read(&on_disk).unwrap(), b"{\"v\":2}\n");
        let mode = std::fs::metadata(on_disk.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            files.read(path, 1 << 20).unwrap(),
            Some(b"{\"v\":2}\n".to_vec())
        );
        let names: Vec<_> = std::fs::read_dir(on_disk.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["w0.json"]);
        files.put(path, &FileChange::Remove, me()).unwrap();
        assert!(!on_disk.exists());

        // A link in place of a directory, pointing out of the root: refused, nothing written.
        let outside = tempfile::tempdir().unwrap();
        std::fs::remove_dir_all(root.path().join("run/routectl")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("run/routectl")).unwrap();
        assert!(
            files
                .put(path, &FileChange::Write(b"x".to_vec()), me())
                .is_err()
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

        // A FIFO where a file is expected: nothing, at once.
        std::fs::remove_file(root.path().join("run/routectl")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.path().join("run/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(files.read("/run/fifo", 1 << 20).unwrap(), None);
    }

    /// A regular file is read (and bounded); a FIFO, a device, a directory, or a link to one,
    /// read as nothing and at once: none is opened for reading.
    #[test]
    fn only_regular_files_are_read_and_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("record.json"), b"{}\n").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::symlink(d.join("fifo"), d.join("to-fifo")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("to-null")).unwrap();
        let files = RootFiles::new(std::path::Path::new("/")).unwrap();
        let at = |name: &str| d.join(name).display().to_string();
        assert_eq!(
            files.read(&at("record.json"), 100),
            Ok(Some(b"{}\n".to_vec()))
        );
        assert!(files.read(&at("record.json"), 2).is_err());
        let started = std::time::Instant::now();
        for name in ["fifo", "to-fifo", "to-null", "missing"] {
            assert_eq!(files.read(&at(name), 100), Ok(None), "{name}");
        }
        for path in ["/dev/null", "/dev/ptmx", "/dev/tty", "/"] {
            assert_eq!(files.read(path, 100), Ok(None), "{path}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
