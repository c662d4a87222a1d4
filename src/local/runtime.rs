//! routectl's private runtime directory: where the lock lives by default, and where other local
//! state that no one else may touch belongs (for example ssh `ControlPath` sockets).
//!
//! `$ROUTECTL_RUNTIME_DIR` when set (an absolute path); else, as root, `/run/routectl`; for
//! another user `$XDG_RUNTIME_DIR/routectl` (a user without `XDG_RUNTIME_DIR` is told to set
//! `ROUTECTL_RUNTIME_DIR` or name a lock file). ssh's connection masters live in `ssh/` inside it. The directory is created with mode 0700 and,
//! whether new or old, must be a real directory (not a symlink) owned by the effective user with
//! no access for group or others; anything else is refused, never repaired or followed.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The root user's runtime directory.
pub const ROOT_RUNTIME_DIR: &str = "/run/routectl";

/// The effective user id of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Where the private runtime directory is for this user (not created).
pub fn runtime_dir_path() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("ROUTECTL_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        if Path::new(&dir).is_absolute() {
            return Ok(PathBuf::from(dir));
        }
        return Err(Error::NoRuntimeDir {
            root_dir: ROOT_RUNTIME_DIR.to_string(),
            relative: Some(dir.to_string_lossy().into_owned()),
        });
    }
    if euid() == 0 {
        return Ok(PathBuf::from(ROOT_RUNTIME_DIR));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => Ok(PathBuf::from(dir).join("routectl")),
        _ => Err(Error::NoRuntimeDir {
            root_dir: ROOT_RUNTIME_DIR.to_string(),
            relative: None,
        }),
    }
}

/// The private runtime directory, created 0700 when missing, and checked: a directory (not a
/// symlink) owned by the effective user, without group or other permissions.
pub fn private_dir() -> Result<PathBuf, Error> {
    let dir = runtime_dir_path()?;
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// The directory for ssh's control sockets (`ssh/` in the runtime directory), both created
/// (0700) when missing and checked like the runtime directory.
pub fn ssh_control_dir() -> Result<PathBuf, Error> {
    let dir = private_dir()?;
    let ssh = dir.join("ssh");
    ensure_private_dir(&ssh)?;
    Ok(ssh)
}

/// Creates `dir` (mode 0700) when missing; then refuses it unless it is a directory that is not
/// a symlink, owned by the effective user, with no permissions for group or others.
pub fn ensure_private_dir(dir: &Path) -> Result<(), Error> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::io(
                format!("creating the runtime directory `{}`", dir.display()),
                e,
            ));
        }
    }
    // lstat: a symlink is judged as itself, never followed.
    let meta = std::fs::symlink_metadata(dir).map_err(|e| {
        Error::io(
            format!("checking the runtime directory `{}`", dir.display()),
            e,
        )
    })?;
    let why = if meta.file_type().is_symlink() {
        Some("is a symlink".to_string())
    } else if !meta.is_dir() {
        Some("is not a directory".to_string())
    } else if meta.uid() != euid() {
        Some(format!(
            "is owned by uid {}, not by this user (uid {})",
            meta.uid(),
            euid()
        ))
    } else if meta.permissions().mode() & 0o077 != 0 {
        Some(format!(
            "has mode {:04o}; it must be accessible to its owner only (0700)",
            meta.permissions().mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::BadRuntimeDir {
            path: dir.display().to_string(),
            why,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_directory_and_refuses_others() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("rt");
        ensure_private_dir(&dir).unwrap();
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // Again: an existing private directory is fine.
        ensure_private_dir(&dir).unwrap();

        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = ensure_private_dir(&open).unwrap_err().to_string();
        assert!(e.contains("has mode 1777"), "{e}");

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
    }
}
