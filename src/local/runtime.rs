//! routectl's private runtime directory, where ssh keeps its connection masters (`ControlPath`).
//!
//! A control socket lets whoever can open it run commands as the user on every node the
//! master reaches, so the directory must belong to routectl's user alone: it is created with
//! mode 0700, and an existing one is refused when it is a symlink, not a directory, owned by
//! someone else or open to group or others. Nothing here follows a symlink.
//!
//! Where: `$ROUTECTL_RUNTIME_DIR` when set; else `/run/routectl` for root; else
//! `$XDG_RUNTIME_DIR/routectl`; else `/tmp/routectl-UID`. ssh's masters live in `ssh/` inside it.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The runtime directory routectl would use (not created).
pub fn runtime_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = env("ROUTECTL_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    let uid = euid();
    if uid == 0 {
        return PathBuf::from("/run/routectl");
    }
    match env("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("routectl"),
        None => PathBuf::from(format!("/tmp/routectl-{uid}")),
    }
}

/// The directory for ssh's control sockets, created (0700) if needed and checked.
pub fn ssh_control_dir() -> Result<PathBuf, Error> {
    let base = runtime_dir();
    private_dir(&base)?;
    let ssh = base.join("ssh");
    private_dir(&ssh)?;
    Ok(ssh)
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Makes sure `dir` is a directory of ours that nobody else can enter, creating it (0700, not
/// its parents) when it is missing.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    let refuse = |why: String| Error::BadSshRuntimeDir {
        path: dir.display().to_string(),
        why,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::io(
                format!("creating the runtime directory `{}`", dir.display()),
                e,
            ));
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| {
        Error::io(
            format!("reading the runtime directory `{}`", dir.display()),
            e,
        )
    })?;
    if meta.file_type().is_symlink() {
        return Err(refuse("is a symbolic link".to_string()));
    }
    if !meta.is_dir() {
        return Err(refuse("is not a directory".to_string()));
    }
    if meta.uid() != euid() {
        return Err(refuse(format!(
            "belongs to user {} (routectl runs as {})",
            meta.uid(),
            euid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "has mode {mode:04o}: group or others can reach it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_directory_and_accepts_it_again() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("rt");
        private_dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        private_dir(&d).unwrap();
    }

    #[test]
    fn refuses_a_symlink_an_open_directory_and_a_file() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&real)
            .unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");

        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&open).unwrap_err().to_string();
        assert!(e.contains("has mode 0755"), "{e}");

        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = private_dir(&file).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }
}
