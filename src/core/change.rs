//! One change on one node, and the one place that turns it into an `ip -batch` line. Both the
//! diff (which makes changes) and the plan (which holds them) use it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::core::route::{
    Destination, Family, NextHop, Route, TABLE_MAIN, TYPE_UNICAST, type_name,
};

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
    /// A foreign route to a desired destination differs: shown, never changed (without
    /// `--take-over`).
    Conflict,
    /// With `--take-over`: a foreign route in a desired route's way is removed and the desired,
    /// owned route put in its place (`ip route replace` when the foreign route is alone in the
    /// desired route's key, else `ip route del` of exactly the foreign route, then an add).
    TakeOver,
    /// An owned route that is not desired: `ip route del … proto P`.
    Delete,
}

/// Why a change is in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// The topology asks for something routectl has not applied on this node (or the node has
    /// no last-applied record).
    #[default]
    Topology,
    /// The node no longer has what routectl last applied there: deleted, replaced or edited
    /// outside routectl since that apply.
    Drift,
}

impl Cause {
    /// The name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Topology => "topology",
            Cause::Drift => "drift",
        }
    }
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
            Action::TakeOver => "take_over",
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
    /// The route in the kernel now, where there is one (for a take-over: the foreign route).
    pub current: Option<Route>,
    /// For a take-over: the foreign route is the only route of the desired route's key, so
    /// `ip route replace` rewrites exactly it (no add follows).
    pub in_place: bool,
    /// Why the change is needed.
    pub cause: Cause,
    /// For a delete: another route in the table shares this route's key, so the `ip` line
    /// must name the device as well to hit exactly this one.
    pub key_shared: bool,
}

impl Change {
    /// A change.
    pub fn new(action: Action, route: Route, current: Option<Route>) -> Change {
        Change {
            action,
            route,
            current,
            in_place: false,
            cause: Cause::Topology,
            key_shared: false,
        }
    }

    /// A take-over of the foreign route `foreign` by `route`; `in_place` when `foreign` alone
    /// holds `route`'s key.
    pub fn take_over(route: Route, foreign: Route, in_place: bool) -> Change {
        Change {
            in_place,
            ..Change::new(Action::TakeOver, route, Some(foreign))
        }
    }

    /// Whether `apply` runs a command for this change.
    pub fn is_operation(&self, adopt: bool) -> bool {
        match self.action {
            Action::Add | Action::Replace | Action::Delete | Action::TakeOver => true,
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
        if self.action == Action::TakeOver && !self.in_place {
            return self.current.as_ref().and_then(delete_exactly);
        }
        let r = &self.route;
        let Destination::Net(dst) = &r.dst else {
            return None;
        };
        let verb = match self.action {
            Action::Add => "add",
            Action::Replace | Action::Adopt | Action::TakeOver => "replace",
            Action::Delete => "del",
            Action::Conflict => return None,
        };
        let mut line = format!("route {verb} {dst}");
        if self.action == Action::Delete {
            if let Some(id) = r.nhid {
                // A route through a nexthop object is identified by the object; the kernel
                // refuses a delete that names its gateway ("No such process").
                let _ = write!(line, " nhid {id}");
            } else if let Some(gateway) = r.gateway() {
                // The gateway makes the deletion exact when several routes share a key (IPv4
                // `ip route append`).
                let _ = write!(line, " via {gateway}");
            }
            // The device too when another route shares the key (say one `onlink` through
            // another device): the line must match exactly this route. Otherwise it is left
            // out, so a route whose device was renamed can still be deleted.
            if self.key_shared
                && r.nhid.is_none()
                && let Some(dev) = r.dev()
            {
                // A name read from a node goes into the batch only when it is one plain word.
                if dev.is_empty()
                    || dev
                        .chars()
                        .any(|c| c.is_control() || c.is_whitespace() || "\"'\\#".contains(c))
                {
                    return None;
                }
                let _ = write!(line, " dev {dev}");
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

/// `route del …` that can match exactly `r` and nothing else: its type, destination, key
/// (table, metric, tos; IPv6 `from`), protocol and every next hop (a multipath route by its
/// `nexthop` list). The kernel deletes only a route that matches all of them.
pub fn delete_exactly(r: &Route) -> Option<String> {
    let mut line = String::from("route del ");
    line.push_str(&route_spec(r)?);
    Some(line)
}

/// `route add …` that recreates `r` exactly (used to put a node back as it was).
pub fn add_exactly(r: &Route) -> Option<String> {
    let mut line = String::from("route add ");
    line.push_str(&route_spec(r)?);
    for flag in &r.flags {
        if flag == "onlink" {
            line.push_str(" onlink");
        }
    }
    Some(line)
}

/// A route as `ip route` arguments: `[TYPE] DST [from F] [tos T] NEXTHOPS table T proto P metric M`.
fn route_spec(r: &Route) -> Option<String> {
    let Destination::Net(dst) = &r.dst else {
        return None;
    };
    let mut s = String::new();
    if r.kind != TYPE_UNICAST {
        let _ = write!(s, "{} ", type_name(r.kind));
    }
    let _ = write!(s, "{dst}");
    if let Some(from) = &r.from
        && Family::of_net(dst) == Family::Ipv6
    {
        let _ = write!(s, " from {from}");
    }
    if r.tos != 0 {
        let _ = write!(s, " tos 0x{:02x}", r.tos);
    }
    if let NextHop::Single(h) = &r.next_hop {
        if let Some(g) = &h.gateway {
            let _ = write!(s, " via {g}");
        }
        if let Some(d) = &h.dev {
            let _ = write!(s, " dev {d}");
        }
    }
    let _ = write!(
        s,
        " table {} proto {} metric {}",
        r.table, r.protocol, r.metric
    );
    // `ip` reads every argument after the first `nexthop` as next hops: they come last.
    if let NextHop::Multipath(hops) = &r.next_hop {
        for h in hops {
            s.push_str(" nexthop");
            if let Some(g) = &h.gateway {
                let _ = write!(s, " via {g}");
            }
            if let Some(d) = &h.dev {
                let _ = write!(s, " dev {d}");
            }
        }
    }
    Some(s)
}
