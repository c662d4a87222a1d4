//! One change on one node, and the one place that turns it into an `ip -batch` line. Both the
//! diff (which makes changes) and the plan (which holds them) use it.

use std::fmt;

use ipnet::IpNet;

use serde::Serialize;

use crate::core::route::{AddrText, Destination, Family, NetText, Route, TABLE_MAIN};

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
///
/// Kept small, because a plan of a new cluster holds one per route (a million at 1,000
/// nodes): the route the kernel has now is stored only when it differs from `route` (a
/// delete's is the route itself), and boxed, since most changes (additions) have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// The route after the change (add, replace, adopt), the route removed (delete), or the
    /// desired route that a foreign one blocks (conflict).
    pub route: Route,
    current: Current,
}

/// The route in the kernel now, relative to the change's route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Current {
    /// No route there.
    None,
    /// Exactly the change's route (a delete).
    Same,
    /// Another route.
    Other(Box<Route>),
}

impl Change {
    /// A change; `current` is the route in the kernel now, where there is one.
    pub fn new(action: Action, route: Route, current: Option<Route>) -> Change {
        let current = match current {
            None => Current::None,
            Some(c) if c == route => Current::Same,
            Some(c) => Current::Other(Box::new(c)),
        };
        Change {
            action,
            route,
            current,
        }
    }

    /// Deleting `route` (the kernel has exactly it).
    pub fn delete(route: Route) -> Change {
        Change {
            action: Action::Delete,
            route,
            current: Current::Same,
        }
    }

    /// The route in the kernel now, where there is one.
    pub fn current(&self) -> Option<&Route> {
        match &self.current {
            Current::None => None,
            Current::Same => Some(&self.route),
            Current::Other(r) => Some(r),
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
        self.batch().map(|b| b.to_string())
    }

    /// The batch line as a value that writes itself (no string until one is needed).
    pub fn batch(&self) -> Option<BatchLine<'_>> {
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
        // Only a delete may do without a gateway.
        if self.action != Action::Delete && r.gateway().is_none() {
            return None;
        }
        Some(BatchLine {
            verb,
            dst: *dst,
            route: r,
        })
    }
}

/// An `ip -batch` line (see [`Change::batch`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchLine<'a> {
    verb: &'static str,
    dst: IpNet,
    route: &'a Route,
}

impl fmt::Display for BatchLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.route;
        write!(f, "route {} {}", self.verb, NetText(self.dst))?;
        if let Some(gateway) = r.gateway() {
            write!(f, " via {}", AddrText(gateway))?;
        }
        if self.verb != "del" {
            // The gateway makes a deletion exact when several routes share a key (IPv4 `ip
            // route append`); the device is left out of a delete so that a route whose device
            // is gone can still be deleted.
            if let Some(dev) = r.dev() {
                write!(f, " dev {dev}")?;
            }
        }
        write!(
            f,
            " table {TABLE_MAIN} proto {} metric {}",
            r.protocol, r.metric
        )?;
        if r.tos != 0 {
            write!(f, " tos 0x{:02x}", r.tos)?;
        }
        if let Some(from) = &r.from
            && Family::of_net(&self.dst) == Family::Ipv6
        {
            write!(f, " from {}", NetText(*from))?;
        }
        Ok(())
    }
}
