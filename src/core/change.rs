//! One change on one node, the typed route operation ([`RouteOp`]) that performs it, and the one
//! place that writes an operation as an `ip -batch` line. Both the diff (which makes changes)
//! and the plan (which holds them) use it.

use std::fmt::Write as _;

use serde::Serialize;

use ipnet::IpNet;

use crate::core::route::{
    Destination, Family, Hop, NextHop, Route, TABLE_MAIN, TYPE_UNICAST, type_name,
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

    /// The `ip -batch` line that performs the change (none for a conflict): its
    /// [`Change::op`] written out.
    pub fn batch_line(&self) -> Option<String> {
        self.op().map(|op| op.line())
    }

    /// The route operation that performs the change (none for a conflict). Every operation
    /// names table, protocol and metric explicitly, so that it can only ever hit the intended
    /// route; a delete of a route routectl does not own cannot match because of its protocol.
    pub fn op(&self) -> Option<RouteOp> {
        if self.action == Action::TakeOver && !self.in_place {
            return self.current.as_ref().and_then(RouteOp::delete_exactly);
        }
        let r = &self.route;
        let Destination::Net(dst) = &r.dst else {
            return None;
        };
        let verb = match self.action {
            Action::Add => Verb::Add,
            Action::Replace | Action::Adopt | Action::TakeOver => Verb::Replace,
            Action::Delete => Verb::Del,
            Action::Conflict => return None,
        };
        let mut op = RouteOp {
            verb,
            kind: None,
            dst: *dst,
            from: r.from.filter(|_| Family::of_net(dst) == Family::Ipv6),
            tos: r.tos,
            nhid: None,
            next_hop: NextHop::Single(Hop::default()),
            table: TABLE_MAIN,
            protocol: r.protocol,
            metric: r.metric,
            onlink: false,
            exact: false,
        };
        let mut hop = Hop::default();
        if verb == Verb::Del {
            if let Some(id) = r.nhid {
                // A route through a nexthop object is identified by the object; the kernel
                // refuses a delete that names its gateway ("No such process").
                op.nhid = Some(id);
            } else {
                // The gateway makes the deletion exact when several routes share a key (IPv4
                // `ip route append`).
                hop.gateway = r.gateway();
            }
            // The device too when another route shares the key (say one `onlink` through
            // another device): the operation must match exactly this route. Otherwise it is
            // left out, so a route whose device was renamed can still be deleted.
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
                hop.dev = Some(dev.to_string());
            }
        } else {
            hop.gateway = Some(r.gateway()?);
            hop.dev = r.dev().map(str::to_string);
        }
        op.next_hop = NextHop::Single(hop);
        Some(op)
    }
}

/// What a route operation does: `ip route add`, `replace` or `del`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Create a route; the kernel refuses one whose key is taken.
    Add,
    /// Create a route or rewrite the one holding its key.
    Replace,
    /// Remove the route matching every field given.
    Del,
}

impl Verb {
    /// The word `ip route` takes.
    pub fn word(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Replace => "replace",
            Verb::Del => "del",
        }
    }
}

/// One route operation of an apply, typed: what an exec transport sends as one `ip -batch` line
/// ([`RouteOp::line`]) and host access sends as the netlink request that line makes `ip` send.
/// A field left out (`None`) is not named, as a word left out of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOp {
    /// add, replace or del.
    pub verb: Verb,
    /// The route type, when named (`blackhole`, `unreachable`, …; unicast is not named).
    pub kind: Option<u8>,
    /// The destination.
    pub dst: IpNet,
    /// The IPv6 source prefix (`from`).
    pub from: Option<IpNet>,
    /// The IPv4 type of service (0: not named).
    pub tos: u8,
    /// The nexthop object (`nhid`).
    pub nhid: Option<u32>,
    /// The gateway and device named (none of either: not named), or the `nexthop` list.
    pub next_hop: NextHop,
    /// The table.
    pub table: u32,
    /// The protocol.
    pub protocol: u8,
    /// The metric.
    pub metric: u32,
    /// `onlink`: the gateway is taken as on the device's link.
    pub onlink: bool,
    /// Written in the word order of an exact operation (type, `from` and `tos` before the next
    /// hops), rather than that of a planned change.
    exact: bool,
}

impl RouteOp {
    /// `route del …` that can match exactly `r` and nothing else: its type, destination, key
    /// (table, metric, tos; IPv6 `from`), protocol and every next hop (a multipath route by its
    /// `nexthop` list). The kernel deletes only a route that matches all of them.
    pub fn delete_exactly(r: &Route) -> Option<RouteOp> {
        let Destination::Net(dst) = &r.dst else {
            return None;
        };
        Some(RouteOp {
            verb: Verb::Del,
            kind: (r.kind != TYPE_UNICAST).then_some(r.kind),
            dst: *dst,
            from: r.from.filter(|_| Family::of_net(dst) == Family::Ipv6),
            tos: r.tos,
            nhid: None,
            next_hop: r.next_hop.clone(),
            table: r.table,
            protocol: r.protocol,
            metric: r.metric,
            onlink: false,
            exact: true,
        })
    }

    /// `route add …` that recreates `r` exactly (used to put a node back as it was).
    pub fn add_exactly(r: &Route) -> Option<RouteOp> {
        let mut op = RouteOp::delete_exactly(r)?;
        op.verb = Verb::Add;
        op.onlink = r.flags.iter().any(|f| f == "onlink");
        Some(op)
    }

    /// The same operation as a replace.
    pub fn replacing(mut self) -> RouteOp {
        self.verb = Verb::Replace;
        self
    }

    /// The operation as an `ip -batch` line: for a planned change `route VERB DST [nhid N]
    /// [via G] [dev D] table T proto P metric M [tos T] [from F]`; for an exact one `route VERB
    /// [TYPE] DST [from F] [tos T] [via G] [dev D] table T proto P metric M [nexthop …]
    /// [onlink]`.
    pub fn line(&self) -> String {
        let mut s = format!("route {} ", self.verb.word());
        if self.exact {
            if let Some(kind) = self.kind {
                let _ = write!(s, "{} ", type_name(kind));
            }
            let _ = write!(s, "{}", self.dst);
            self.write_from_tos(&mut s, true);
        } else {
            let _ = write!(s, "{}", self.dst);
        }
        if let Some(id) = self.nhid {
            let _ = write!(s, " nhid {id}");
        }
        if let NextHop::Single(h) = &self.next_hop {
            write_hop(&mut s, h);
        }
        let _ = write!(
            s,
            " table {} proto {} metric {}",
            self.table, self.protocol, self.metric
        );
        if !self.exact {
            self.write_from_tos(&mut s, false);
        }
        // `ip` reads every argument after the first `nexthop` as next hops: they come last.
        if let NextHop::Multipath(hops) = &self.next_hop {
            for h in hops {
                s.push_str(" nexthop");
                write_hop(&mut s, h);
            }
        }
        if self.onlink {
            s.push_str(" onlink");
        }
        s
    }

    fn write_from_tos(&self, s: &mut String, from_first: bool) {
        if from_first && let Some(from) = &self.from {
            let _ = write!(s, " from {from}");
        }
        if self.tos != 0 {
            let _ = write!(s, " tos 0x{:02x}", self.tos);
        }
        if !from_first && let Some(from) = &self.from {
            let _ = write!(s, " from {from}");
        }
    }
}

fn write_hop(s: &mut String, h: &Hop) {
    if let Some(g) = &h.gateway {
        let _ = write!(s, " via {g}");
    }
    if let Some(d) = &h.dev {
        let _ = write!(s, " dev {d}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, gw: &str) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            3,
            0,
        )
    }

    /// An exact operation names the type, `from` and `tos` before the next hops, the `nexthop`
    /// list and `onlink` last; a planned change's operation puts `tos` and `from` last.
    #[test]
    fn operations_are_written_in_the_order_ip_reads_them() {
        let mut r = route("10.1.5.0/24", "10.0.2.25");
        r.tos = 0x10;
        r.flags = vec!["onlink".into()];
        assert_eq!(
            RouteOp::add_exactly(&r).unwrap().line(),
            "route add 10.1.5.0/24 tos 0x10 via 10.0.2.25 dev eth1 table 254 proto 3 metric 0 onlink"
        );
        assert_eq!(
            RouteOp::add_exactly(&r).unwrap().replacing().line(),
            "route replace 10.1.5.0/24 tos 0x10 via 10.0.2.25 dev eth1 table 254 proto 3 metric 0 onlink"
        );
        assert_eq!(
            Change::new(Action::Add, r.clone(), None)
                .batch_line()
                .unwrap(),
            "route add 10.1.5.0/24 via 10.0.2.25 dev eth1 table 254 proto 3 metric 0 tos 0x10"
        );
        let mut hole = route("10.1.6.0/24", "10.0.2.26");
        hole.kind = 6;
        hole.table = 100;
        hole.next_hop = NextHop::Single(Hop::default());
        assert_eq!(
            RouteOp::delete_exactly(&hole).unwrap().line(),
            "route del blackhole 10.1.6.0/24 table 100 proto 3 metric 0"
        );
        let mut six = route("fd00:1::/64", "fd00::21");
        six.from = Some("fd00:9::/64".parse().unwrap());
        six.next_hop = NextHop::Multipath(vec![
            Hop {
                gateway: Some("fd00::21".parse().unwrap()),
                dev: Some("eth1".into()),
            },
            Hop {
                gateway: Some("fd00::22".parse().unwrap()),
                dev: None,
            },
        ]);
        assert_eq!(
            RouteOp::delete_exactly(&six).unwrap().line(),
            "route del fd00:1::/64 from fd00:9::/64 table 254 proto 3 metric 1024 \
             nexthop via fd00::21 dev eth1 nexthop via fd00::22"
        );
    }
}
