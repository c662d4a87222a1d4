//! One change on one node, and the one place that turns it into an `ip -batch` line. Both the
//! diff (which makes changes) and the plan (which holds them) use it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::core::route::{Destination, Family, Route, TABLE_MAIN};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A desired route is missing: `ip route add`.
    Add,
    /// An owned route to a desired destination forwards wrongly: `ip route replace`.
    Replace,
    /// A foreign route identical to a desired one: taken over (`ip route replace … proto P`)
    /// only with `--adopt`.
    Adopt,
    /// A foreign route to a desired destination differs: shown, never changed.
    Conflict,
    /// An owned route that is not desired: `ip route del … proto P`.
    Delete,
}

impl Action {
    /// The name used in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Adopt => "adopt",
            Action::Conflict => "conflict",
        }
    }
}

/// One change on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// The route after the change (add, replace, adopt), the route removed (delete), or the
    /// desired route that a foreign one blocks (conflict).
    pub route: Route,
    /// The route in the kernel now, where there is one.
    pub current: Option<Route>,
}

impl Change {
    /// A change.
    pub fn new(action: Action, route: Route, current: Option<Route>) -> Change {
        Change {
            action,
            route,
            current,
        }
    }

    /// Whether `apply` runs a command for this change.
    pub fn is_operation(&self, adopt: bool) -> bool {
        match self.action {
            Action::Add | Action::Replace | Action::Delete => true,
            Action::Adopt => adopt,
            Action::Conflict => false,
        }
    }

    /// Whether the change keeps a node from being converged: an operation `apply` would run, or
    /// a conflict standing in the way. The one definition of "converged" (see
    /// [`crate::core::diff::NodeDiff::is_converged`]).
    pub fn is_pending(&self, adopt: bool) -> bool {
        self.is_operation(adopt) || self.action == Action::Conflict
    }

    /// The `ip -batch` line that performs the change (none for a conflict). Every line names
    /// table, protocol and metric explicitly, so that it can only ever hit the intended route;
    /// a delete of a route routectl does not own cannot match because of its protocol.
    pub fn batch_line(&self) -> Option<String> {
        let r = &self.route;
        let Destination::Net(dst) = &r.dst else {
            return None;
        };
        let verb = match self.action {
            Action::Add => "add",
            Action::Replace | Action::Adopt => "replace",
            Action::Delete => "del",
            Action::Conflict => return None,
        };
        let mut line = format!("route {verb} {dst}");
        if self.action == Action::Delete {
            // The gateway makes the deletion exact when several routes share a key (IPv4
            // `ip route append`); the device is left out so that a route whose device is gone
            // can still be deleted.
            if let Some(gateway) = r.gateway() {
                let _ = write!(line, " via {gateway}");
            }
        } else {
            let gateway = r.gateway()?;
            let _ = write!(line, " via {gateway}");
            if let Some(dev) = r.dev() {
                let _ = write!(line, " dev {dev}");
            }
        }
        let _ = write!(
            line,
            " table {TABLE_MAIN} proto {} metric {}",
            r.protocol, r.metric
        );
        if r.tos != 0 {
            let _ = write!(line, " tos 0x{:02x}", r.tos);
        }
        if let Some(from) = &r.from
            && Family::of_net(dst) == Family::Ipv6
        {
            let _ = write!(line, " from {from}");
        }
        Some(line)
    }
}
