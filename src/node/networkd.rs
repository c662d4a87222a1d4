//! Persisting routectl's routes through the node's network manager: writing or removing its
//! persisted file (decided in [`crate::core::persist`]) and, for a networkd drop-in, making
//! networkd load it.
//!
//! The file is one part of an [`ApplyRequest`]: the exec transports carry it in the one apply
//! script (content on stdin, length- and digest-checked, written to a fresh temporary file in
//! the file's directory with the mode its manager requires, flushed, renamed over the file, the
//! directory flushed; for a drop-in then `networkctl reload` and a wait until networkd has
//! reconfigured the links that use it), fused with the route lines when there are any. After a
//! drop-in, networkd reconfigures the link: it drops and re-adds the link's address (the kernel
//! flushes the link's routes) and installs the drop-in's routes itself, so the routes are read
//! back until they are all there ([`settle`]). A NetworkManager
//! dispatcher script or an ifupdown hook needs no reload: it acts at the manager's next `up`.

use std::time::{Duration, Instant};

use crate::core::applied::DropinWrite;
use crate::core::diff;
use crate::core::persist::{Mechanism, PersistPlan};
use crate::core::plan::NodePlan;
use crate::core::route::Route;
use crate::core::topology::Node;
use crate::error::NodeError;
use crate::node::observe;
use crate::node::request::{ApplyRequest, FileChange, PersistedFile};
use crate::node::transport::Transport;

/// The persisted file's part of an apply: its path, what to do with it, its mode and whether
/// networkd is reloaded (`None` when the plan leaves it alone).
pub fn persisted_change(np: &NodePlan) -> Option<(Mechanism, PersistedFile)> {
    let (mechanism, path, change) = match &np.persist {
        PersistPlan::Write {
            mechanism,
            path,
            new,
            ..
        } => (
            *mechanism,
            path,
            FileChange::Write(new.clone().into_bytes()),
        ),
        PersistPlan::Remove {
            mechanism, path, ..
        } => (*mechanism, path, FileChange::Remove),
        PersistPlan::Off | PersistPlan::InSync { .. } => return None,
    };
    Some((
        mechanism,
        PersistedFile {
            path: path.clone(),
            change,
            mode: mechanism.mode(),
            networkd_reload: mechanism.reloads(),
        },
    ))
}

/// How long apply waits for networkd to put the routes back after a reload.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long apply waits, after removing a drop-in, for networkd to drop the routes it had
/// from it (apply then adds them again as plain routectl routes).
pub const REMOVE_SETTLE: Duration = Duration::from_secs(3);

/// Carries out `np`'s persisted-file change on `node`. For a drop-in: after a write, waits until
/// networkd has installed every desired route again (read back every 100 ms, at most
/// [`SETTLE_TIMEOUT`]); after a removal, until networkd has dropped the routes it had from the
/// drop-in (at most [`REMOVE_SETTLE`]), for the caller to add them again. A hook changes no
/// route: nothing is waited for.
pub fn apply(
    t: &dyn Transport,
    node: &Node,
    np: &NodePlan,
    desired: &[Route],
    policy: &diff::Policy,
    adopt: bool,
) -> Result<DropinWrite, NodeError> {
    let started = Instant::now();
    let Some((mechanism, file)) = persisted_change(np) else {
        return Err(NodeError::Persist {
            path: np.persist.path().map(str::to_string),
            reason: "nothing to write".to_string(),
        });
    };
    let action = if file.change == FileChange::Remove {
        "removed"
    } else {
        "written"
    };
    let path = file.path.clone();
    let req = ApplyRequest {
        persisted: Some(file),
        ..ApplyRequest::default()
    };
    let out = t.apply(&node.instance, &req)?;
    if out.status != Some(0) || !out.persisted_done {
        return Err(NodeError::Persist {
            path: Some(path.clone()),
            reason: format!(
                "writing the {} {path} failed (exit {}): {}",
                mechanism.describe(),
                out.status
                    .map_or("by signal".to_string(), |s| s.to_string()),
                out.stderr.trim()
            ),
        });
    }
    let written = started.elapsed();
    if !mechanism.reloads() {
        let ms = written.as_millis() as u64;
        return Ok(DropinWrite {
            mechanism,
            path,
            action,
            write_ms: ms,
            settled_ms: ms,
        });
    }
    settle(
        t, node, desired, policy, adopt, path, action, started, written,
    )
}

/// After a drop-in was written (or removed) and networkd reloaded at `started` (the write took
/// `written`): waits until networkd has installed every desired route again (read back every
/// 100 ms, at most [`SETTLE_TIMEOUT`]); after a removal, until networkd has dropped the routes it
/// had from the drop-in (at most [`REMOVE_SETTLE`]), for the caller to add them again.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    t: &dyn Transport,
    node: &Node,
    desired: &[Route],
    policy: &diff::Policy,
    adopt: bool,
    path: String,
    action: &'static str,
    started: Instant,
    written: Duration,
) -> Result<DropinWrite, NodeError> {
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
            mechanism: Mechanism::Networkd,
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
                mechanism: Mechanism::Networkd,
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
