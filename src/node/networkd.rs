//! Persisting routectl's routes through systemd-networkd: writing or removing a node's drop-in
//! (decided in [`crate::core::persist`]) and making networkd load it.
//!
//! The content goes to the node as stdin of a fixed script; the drop-in's directory and name are
//! its positional parameters, never part of a shell string. The script writes to a fresh
//! temporary file in the drop-in's directory (`mktemp`, which creates it exclusively), flushes
//! it, renames it over the drop-in (a symbolic link there is replaced, never followed), flushes
//! the directory, then runs `networkctl reload`. networkd then reconfigures
//! the link: it drops and re-adds the link's address (the kernel flushes the link's routes) and
//! installs the drop-in's routes itself, so the routes are read back until they are all there.

use std::time::{Duration, Instant};

use crate::core::applied::DropinWrite;
use crate::core::diff;
use crate::core::persist::PersistPlan;
use crate::core::plan::NodePlan;
use crate::core::route::Route;
use crate::core::topology::Node;
use crate::error::NodeError;
use crate::node::observe;
use crate::node::transport::{Invocation, Transport};

/// Writes stdin to `$1/$2` atomically, then reloads networkd.
pub const WRITE_SCRIPT: &str = concat!(
    r#"set -e; d=$1; n=$2; if [ -L "$d" ]; then echo "$d is a symbolic link" >&2; exit 1; fi; "#,
    r#"mkdir -p -- "$d"; t=$(mktemp -- "$d/.$n.XXXXXXXXXX"); trap 'rm -f -- "$t"' EXIT; "#,
    r#"cat > "$t"; chmod 0644 -- "$t"; sync -- "$t" 2>/dev/null || sync; mv -f -- "$t" "$d/$n"; "#,
    r#"trap - EXIT; sync -- "$d" 2>/dev/null || true; networkctl reload"#
);

/// Removes `$1/$2` (and `$1` when empty), then reloads networkd.
pub const REMOVE_SCRIPT: &str = concat!(
    r#"set -e; d=$1; n=$2; rm -f -- "$d/$n"; rmdir -- "$d" 2>/dev/null || true; "#,
    r#"networkctl reload"#
);

/// How long apply waits for networkd to put the routes back after a reload.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long apply waits, after removing a drop-in, for networkd to drop the routes it had
/// from it (apply then adds them again as plain routectl routes).
pub const REMOVE_SETTLE: Duration = Duration::from_secs(3);

fn script(script: &str, path: &str) -> Invocation {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    Invocation {
        program: "sh".to_string(),
        args: vec![
            "-c".to_string(),
            script.to_string(),
            "sh".to_string(),
            dir.to_string(),
            name.to_string(),
        ],
        stdin: None,
    }
}

/// Carries out `np`'s drop-in change on `node`. After a write, waits until networkd has
/// installed every desired route again (read back every 100 ms, at most [`SETTLE_TIMEOUT`]);
/// after a removal, until networkd has dropped the routes it had from the drop-in (at most
/// [`REMOVE_SETTLE`]), for the caller to add them again.
pub fn apply(
    t: &dyn Transport,
    node: &Node,
    np: &NodePlan,
    desired: &[Route],
    policy: &diff::Policy,
    adopt: bool,
) -> Result<DropinWrite, NodeError> {
    let started = Instant::now();
    let (inv, action, path) = match &np.persist {
        PersistPlan::Write { path, new, .. } => (
            script(WRITE_SCRIPT, path).with_stdin(new.clone().into_bytes()),
            "written",
            path.clone(),
        ),
        PersistPlan::Remove { path, .. } => (script(REMOVE_SCRIPT, path), "removed", path.clone()),
        PersistPlan::Off | PersistPlan::InSync { .. } => {
            return Err(NodeError::Persist {
                path: np.persist.path().map(str::to_string),
                reason: "nothing to write".to_string(),
            });
        }
    };
    let out = t.run(&node.instance, &inv)?;
    if out.status != Some(0) {
        return Err(NodeError::Persist {
            path: Some(path.clone()),
            reason: format!(
                "writing the networkd drop-in {path} failed (exit {}): {}",
                out.status
                    .map_or("by signal".to_string(), |s| s.to_string()),
                out.stderr.trim()
            ),
        });
    }
    let written = started.elapsed();
    if action == "removed" {
        // networkd reconfigures the link and drops the routes it had from the drop-in; wait
        // for that (at most REMOVE_SETTLE), so that the caller then puts them back itself.
        let deadline = Instant::now() + REMOVE_SETTLE;
        while Instant::now() < deadline {
            let routes = observe::read_node(t, node)?;
            let d = diff::diff(desired, &routes, policy);
            if d.changes.iter().any(|c| c.is_operation(adopt)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(DropinWrite {
            path,
            action,
            write_ms: written.as_millis() as u64,
            settled_ms: started.elapsed().as_millis() as u64,
        });
    }
    // networkd reconfigures the link after the reload; its routes come back by themselves.
    let deadline = started + SETTLE_TIMEOUT;
    loop {
        let routes = observe::read_node(t, node)?;
        let d = diff::diff(desired, &routes, policy);
        let converged = !d
            .changes
            .iter()
            .any(|c| c.is_operation(adopt) || c.action == crate::core::change::Action::Conflict);
        if converged {
            return Ok(DropinWrite {
                path,
                action,
                write_ms: written.as_millis() as u64,
                settled_ms: started.elapsed().as_millis() as u64,
            });
        }
        if Instant::now() >= deadline {
            return Err(NodeError::Persist {
                path: Some(path.clone()),
                reason: format!(
                    "the drop-in {path} was {action}, but {} s after `networkctl reload` the \
                     node still lacks {} of its routes",
                    SETTLE_TIMEOUT.as_secs(),
                    d.changes.len()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_take_paths_as_positional_parameters() {
        let inv = script(
            WRITE_SCRIPT,
            "/etc/systemd/network/10-eth1.network.d/50-routectl.conf",
        );
        assert_eq!(inv.program, "sh");
        assert_eq!(
            inv.args[2..],
            [
                "sh",
                "/etc/systemd/network/10-eth1.network.d",
                "50-routectl.conf"
            ]
        );
        assert!(!WRITE_SCRIPT.contains('\n') && !REMOVE_SCRIPT.contains('\n'));
        assert!(
            !WRITE_SCRIPT.contains("/etc/"),
            "no path is part of the script"
        );
    }

    #[test]
    fn write_script_writes_atomically_and_reloads() {
        // Run the real script with a stand-in `networkctl` on PATH.
        let dir = std::env::temp_dir().join(format!("routectl-dropin-{}", std::process::id()));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = dir.join("reloads");
        let fake = bin.join("networkctl");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = dir.join("10-eth1.network.d");
        let path = format!("{}/50-routectl.conf", target.display());
        for content in [
            "[Route]\nDestination=10.2.0.0/24\n",
            "[Route]\nDestination=10.2.1.0/24\n",
        ] {
            let inv = script(WRITE_SCRIPT, &path);
            let out = std::process::Command::new("sh")
                .args(&inv.args)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().unwrap().write_all(content.as_bytes())?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
        // No temporary file is left, the mode is 0644, networkd was reloaded each time.
        let names: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["50-routectl.conf"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "reload\nreload\n");
        let inv = script(REMOVE_SCRIPT, &path);
        let out = std::process::Command::new("sh")
            .args(&inv.args)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(!target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
