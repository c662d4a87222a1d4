//! Desired x observed -> the changes one node needs. Pure; the ownership rule lives here.
//!
//! routectl may change or delete only routes it owns: routes in table main that carry its
//! protocol number and are not default routes. Everything else is foreign: left alone, at most
//! adopted (when identical to a desired route and the user asks) or reported as a conflict.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::core::change::{Action, Change};
use crate::core::hex;
use crate::core::route::{Destination, PROTOCOL_KERNEL, Route, TABLE_MAIN};

/// What the diff needs besides the routes.
#[derive(Debug, Clone)]
pub struct Policy {
    /// routectl's protocol number.
    pub protocol: u8,
    /// The cluster's pod ranges: foreign routes inside them are worth a warning.
    pub pod_ranges: Vec<IpNet>,
    /// `--take-over`: foreign routes in a desired route's way are replaced by it instead of
    /// being reported as conflicts.
    pub take_over: bool,
}

/// The ownership rule: the only routes routectl may ever change or delete on its own.
pub fn is_owned(route: &Route, protocol: u8) -> bool {
    route.table == TABLE_MAIN && route.protocol == protocol && !route.dst.is_default()
}

/// The one exception to the ownership rule, granted only by `--take-over`: a foreign route in
/// table main at a desired route's destination that is not that route (a conflict) may be
/// removed so that the desired route can take its place. Routes the kernel made (`proto
/// kernel`, from an address) are never taken over.
pub fn may_take_over(foreign: &Route, want: &Route, policy: &Policy) -> bool {
    policy.take_over
        && !is_owned(foreign, policy.protocol)
        && foreign.table == TABLE_MAIN
        && foreign.dst == want.dst
        && foreign.protocol != PROTOCOL_KERNEL
}

/// The result of diffing one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDiff {
    /// Changes, sorted by destination then action.
    pub changes: Vec<Change>,
    /// Desired routes already in place (owned, or foreign and identical).
    pub in_sync: usize,
    /// Observations worth a human's attention that change nothing.
    pub warnings: Vec<String>,
    /// SHA-256 over every observed route the diff depended on.
    pub fingerprint: String,
}

impl NodeDiff {
    /// True when the node needs nothing and nothing blocks it (no pending change).
    pub fn is_converged(&self, adopt: bool) -> bool {
        !self.changes.iter().any(|c| c.is_pending(adopt))
    }
}

/// Diffs a node's desired routes against what it has (`observed` may hold every table).
pub fn diff(desired: &[Route], observed: &[Route], policy: &Policy) -> NodeDiff {
    let main: Vec<&Route> = observed.iter().filter(|r| r.table == TABLE_MAIN).collect();
    let index = ByDestination::new(&main);
    let mut acc = Acc::default();
    for want in desired {
        acc.place(want, index.routes_to(&want.dst), policy);
    }
    acc.delete_unclaimed(&main, &index, policy);
    acc.warn_strays(&main, desired, policy);
    let Acc {
        mut changes,
        in_sync,
        warnings,
        mut relevant,
        ..
    } = acc;
    changes.sort_by(|a, b| {
        (&a.route.dst, a.action, &a.current).cmp(&(&b.route.dst, b.action, &b.current))
    });
    relevant.sort();
    relevant.dedup();
    NodeDiff {
        changes,
        in_sync,
        warnings,
        fingerprint: fingerprint(&relevant),
    }
}

/// Table main grouped by destination (a stable sort keeps `ip`'s order within a group), so that
/// a destination's routes are found by binary search.
struct ByDestination<'a>(Vec<&'a Route>);

impl<'a> ByDestination<'a> {
    fn new(main: &[&'a Route]) -> Self {
        let mut by_dst = main.to_vec();
        by_dst.sort_by(|a, b| a.dst.cmp(&b.dst));
        ByDestination(by_dst)
    }

    /// The routes to `dst`, in `ip`'s order.
    fn routes_to(&self, dst: &Destination) -> &[&'a Route] {
        let start = self.0.partition_point(|r| r.dst < *dst);
        let end = start + self.0[start..].partition_point(|r| r.dst == *dst);
        &self.0[start..end]
    }
}

/// What the diff found so far.
#[derive(Default)]
struct Acc<'a> {
    changes: Vec<Change>,
    in_sync: usize,
    warnings: Vec<String>,
    /// The observed routes the diff depended on.
    relevant: Vec<&'a Route>,
    /// Owned routes that a desired route accounts for (kept or replaced in place), by address.
    claimed: HashSet<*const Route>,
}

impl<'a> Acc<'a> {
    /// One desired route against the routes `here` at its destination.
    fn place(&mut self, want: &Route, here: &[&'a Route], policy: &Policy) {
        self.relevant.extend(here.iter().copied());
        let owned = here.iter().filter(|r| is_owned(r, policy.protocol));
        let mut foreign = here.iter().filter(|r| !is_owned(r, policy.protocol));
        // `ip route replace` rewrites the first route of a key; when a foreign route shares
        // the key (IPv4 `ip route append`), it could be the one rewritten. Then the owned route
        // is not replaced: it stays unclaimed (deleted by its gateway) and the foreign route is
        // handled below like any foreign route in the way.
        let foreign_shares_key = foreign.clone().any(|f| f.same_key(want));
        if let Some(mine) = owned
            .clone()
            .find(|r| r.same_key(want))
            .filter(|r| r.satisfies(want) || !foreign_shares_key)
        {
            self.claimed.insert(std::ptr::from_ref::<Route>(mine));
            if mine.satisfies(want) {
                self.in_sync += 1;
            } else {
                let current = Some((*mine).clone());
                self.changes
                    .push(Change::new(Action::Replace, want.clone(), current));
            }
            for f in foreign {
                self.warnings.push(format!(
                    "foreign route `{f}` to the same destination as routectl's `{want}`"
                ));
            }
            return;
        }
        match (foreign.next(), foreign.next()) {
            (None, _) => self
                .changes
                .push(Change::new(Action::Add, want.clone(), None)),
            (Some(f), None) if f.same_key(want) && f.satisfies(want) => {
                let current = Some((*f).clone());
                self.changes
                    .push(Change::new(Action::Adopt, want.clone(), current));
            }
            _ if here
                .iter()
                .filter(|r| !is_owned(r, policy.protocol))
                .all(|f| may_take_over(f, want, policy)) =>
            {
                self.take_over(want, here, policy);
            }
            _ => self.conflict(want, here, policy),
        }
    }

    /// `--take-over`: exactly the routes in the way go. One alone in the desired route's key is
    /// rewritten in place (`ip route replace` hits the first route of a key, and it is the only
    /// one); otherwise each is deleted by its identity and the desired route added after them.
    fn take_over(&mut self, want: &Route, here: &[&Route], policy: &Policy) {
        let same_key: Vec<&&Route> = here.iter().filter(|r| r.same_key(want)).collect();
        let alone = match same_key.as_slice() {
            [only] if !is_owned(only, policy.protocol) => Some(**only),
            _ => None,
        };
        for f in here.iter().filter(|r| !is_owned(r, policy.protocol)) {
            let in_place = alone.is_some_and(|a| std::ptr::eq(a, *f));
            self.changes
                .push(Change::take_over(want.clone(), (*f).clone(), in_place));
        }
        if alone.is_none() {
            self.changes
                .push(Change::new(Action::Add, want.clone(), None));
        }
    }

    /// Foreign routes in the desired route's way that are not taken over: conflicts.
    fn conflict(&mut self, want: &Route, here: &[&Route], policy: &Policy) {
        if policy.take_over {
            self.warnings.push(format!(
                "a route the kernel made stands at {}: never taken over",
                want.dst
            ));
        }
        for f in here.iter().filter(|r| !is_owned(r, policy.protocol)) {
            let current = Some((*f).clone());
            self.changes
                .push(Change::new(Action::Conflict, want.clone(), current));
        }
    }

    /// Owned routes no desired route accounts for: deleted.
    fn delete_unclaimed(&mut self, main: &[&'a Route], index: &ByDestination<'a>, policy: &Policy) {
        for r in main {
            if !is_owned(r, policy.protocol)
                || self.claimed.contains(&std::ptr::from_ref::<Route>(r))
            {
                continue;
            }
            self.relevant.push(r);
            if matches!(r.dst, Destination::Net(_)) {
                let mut c = Change::new(Action::Delete, (*r).clone(), Some((*r).clone()));
                c.key_shared = index
                    .routes_to(&r.dst)
                    .iter()
                    .any(|o| !std::ptr::eq(*o, *r) && o.same_key(r));
                self.changes.push(c);
            } else {
                self.warnings.push(format!(
                    "owned route `{r}` has a destination routectl cannot read; left alone"
                ));
            }
        }
    }

    /// Foreign routes inside the pod ranges that no desired route explains: a warning each.
    fn warn_strays(&mut self, main: &[&Route], desired: &[Route], policy: &Policy) {
        let desired_dsts: BTreeMap<&Destination, ()> =
            desired.iter().map(|d| (&d.dst, ())).collect();
        for r in main {
            if is_owned(r, policy.protocol) || desired_dsts.contains_key(&r.dst) {
                continue;
            }
            if let Destination::Net(n) = &r.dst
                && policy.pod_ranges.iter().any(|range| range.contains(n))
                && r.protocol != PROTOCOL_KERNEL
            {
                self.warnings.push(format!(
                    "foreign route `{r}` lies inside the cluster's pod range; left alone"
                ));
            }
        }
    }
}

/// A stable digest of routes (their `ip route` rendering, sorted).
pub fn fingerprint(routes: &[&Route]) -> String {
    // Every line is written into one buffer and the lines are sorted as slices of it: the same
    // digest as sorting one `String` per route, without an allocation per route.
    let mut text = String::with_capacity(routes.len() * 64);
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(routes.len());
    for r in routes {
        let start = text.len();
        let _ = write!(text, "{r}");
        spans.push((start, text.len()));
    }
    let bytes = text.as_bytes();
    spans.sort_by(|a, b| bytes[a.0..a.1].cmp(&bytes[b.0..b.1]));
    let mut h = Sha256::new();
    for (start, end) in spans {
        h.update(&bytes[start..end]);
        h.update(b"\n");
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::route::{Destination, Hop, NextHop};
    // The take-over cases read best as the `ip -j` output they come from.
    use crate::node::iproute::parse_routes;

    fn policy() -> Policy {
        Policy {
            protocol: 211,
            pod_ranges: vec!["10.1.0.0/16".parse().unwrap()],
            take_over: false,
        }
    }

    fn want(dst: &str, gw: &str) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            211,
            0,
        )
    }

    /// An observed route `DST via GW dev eth1 proto PROTOCOL metric METRIC table TABLE`
    /// (`default` for 0.0.0.0/0).
    fn via(dst: &str, gw: &str, protocol: u8, metric: u32, table: u32) -> Route {
        let dst = if dst == "default" { "0.0.0.0/0" } else { dst };
        let mut r = Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            protocol,
            metric,
        );
        r.table = table;
        r
    }

    /// A connected route `DST dev eth1 proto kernel`.
    fn link(dst: &str) -> Route {
        Route {
            dst: Destination::Net(dst.parse().unwrap()),
            table: 254,
            kind: 1,
            protocol: PROTOCOL_KERNEL,
            metric: 0,
            tos: 0,
            from: None,
            next_hop: NextHop::Single(Hop {
                gateway: None,
                dev: Some("eth1".to_string()),
            }),
            nhid: None,
            flags: Vec::new(),
        }
    }

    fn actions(d: &NodeDiff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| format!("{:?} {}", c.action, c.route))
            .collect()
    }

    #[test]
    fn a_route_without_dev_is_satisfied_by_any_device_and_replaced_by_gateway_only() {
        let no_dev = |dst: &str, gw: &str| {
            Route::unicast(dst.parse().unwrap(), gw.parse().unwrap(), None, 211, 0)
        };
        let on = |dst: &str, gw: &str, dev: &str, protocol: u8| {
            Route::unicast(
                dst.parse().unwrap(),
                gw.parse().unwrap(),
                Some(dev),
                protocol,
                0,
            )
        };
        let observed = [
            on("10.3.1.0/24", "10.0.4.21", "ens160", 211),
            on("10.3.2.0/24", "10.0.4.99", "ens160", 211),
            on("10.3.3.0/24", "10.0.4.23", "ens192", 3),
        ];
        let desired = [
            no_dev("10.3.1.0/24", "10.0.4.21"),
            no_dev("10.3.2.0/24", "10.0.4.22"),
            no_dev("10.3.3.0/24", "10.0.4.23"),
        ];
        let d = diff(&desired, &observed, &policy());
        assert_eq!(d.in_sync, 1);
        assert_eq!(
            actions(&d),
            [
                "Replace 10.3.2.0/24 via 10.0.4.22 proto 211",
                "Adopt 10.3.3.0/24 via 10.0.4.23 proto 211",
            ]
        );
        assert_eq!(
            d.changes[0].batch_line().unwrap(),
            "route replace 10.3.2.0/24 via 10.0.4.22 table 254 proto 211 metric 0"
        );
    }

    #[test]
    fn adds_what_is_missing() {
        let observed = [link("10.0.2.0/24")];
        let d = diff(&[want("10.1.1.0/24", "10.0.2.21")], &observed, &policy());
        assert_eq!(
            actions(&d),
            ["Add 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"]
        );
        assert_eq!(d.in_sync, 0);
    }

    #[test]
    fn replaces_deletes_adopts_and_reports_conflicts() {
        let observed = [
            via("10.1.1.0/24", "10.0.2.99", 211, 0, 254),
            via("10.1.2.0/24", "10.0.2.22", 3, 0, 254),
            via("10.1.3.0/24", "10.0.2.99", 3, 0, 254),
            via("10.1.9.0/24", "10.0.2.29", 211, 0, 254),
            via("10.1.9.0/24", "10.0.2.29", 211, 0, 100),
            via("default", "10.0.2.1", 211, 0, 254),
            via("10.1.7.0/24", "10.0.2.1", 3, 0, 254),
        ];
        let desired = [
            want("10.1.1.0/24", "10.0.2.21"),
            want("10.1.2.0/24", "10.0.2.22"),
            want("10.1.3.0/24", "10.0.2.23"),
        ];
        let d = diff(&desired, &observed, &policy());
        assert_eq!(
            actions(&d),
            [
                "Replace 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "Adopt 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
                "Conflict 10.1.3.0/24 via 10.0.2.23 dev eth1 proto 211",
                "Delete 10.1.9.0/24 via 10.0.2.29 dev eth1 proto 211",
            ]
        );
        assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
        assert!(d.warnings[0].contains("10.1.7.0/24"));
    }

    #[test]
    fn in_sync_is_empty_and_fingerprint_tracks_relevant_routes() {
        let a = [
            via("10.1.1.0/24", "10.0.2.21", 211, 0, 254),
            link("10.0.2.0/24"),
        ];
        let b = [
            via("10.1.1.0/24", "10.0.2.21", 211, 0, 254),
            link("10.0.3.0/24"),
        ];
        let desired = [want("10.1.1.0/24", "10.0.2.21")];
        let da = diff(&desired, &a, &policy());
        let db = diff(&desired, &b, &policy());
        assert!(da.changes.is_empty());
        assert_eq!(da.in_sync, 1);
        assert_eq!(
            da.fingerprint, db.fingerprint,
            "unrelated routes do not count"
        );
        let c = [via("10.1.1.0/24", "10.0.2.22", 211, 0, 254)];
        assert_ne!(diff(&desired, &c, &policy()).fingerprint, da.fingerprint);
    }

    fn take_over_policy() -> Policy {
        Policy {
            take_over: true,
            ..policy()
        }
    }

    fn lines(d: &NodeDiff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                format!(
                    "{:?}{} {}",
                    c.action,
                    if c.in_place { "(in place)" } else { "" },
                    c.batch_line().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn take_over_hits_exactly_the_routes_in_the_way() {
        let observed = parse_routes(
            br#"[
            {"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":"3","table":"254"},
            {"dst":"10.1.2.0/24","gateway":"10.0.2.98","dev":"eth1","protocol":"4","metric":10,"table":"254"},
            {"dst":"10.1.3.0/24","nexthops":[{"gateway":"10.0.2.23","dev":"eth1"},{"gateway":"10.0.2.24","dev":"eth1"}],"protocol":"3","table":"254"},
            {"dst":"10.1.4.0/24","dev":"cnio0","protocol":"2","scope":"253","table":"254"},
            {"type":"6","dst":"10.1.5.0/24","protocol":"3","table":"254"},
            {"dst":"10.1.6.0/24","gateway":"10.0.2.96","dev":"eth1","protocol":"3","table":"254"},
            {"dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","protocol":"3","table":"100"}
        ]"#,
        )
        .unwrap();
        let desired = [
            want("10.1.1.0/24", "10.0.2.21"),
            want("10.1.2.0/24", "10.0.2.22"),
            want("10.1.3.0/24", "10.0.2.23"),
            want("10.1.4.0/24", "10.0.2.24"),
            want("10.1.5.0/24", "10.0.2.25"),
        ];
        let d = diff(&desired, &observed, &take_over_policy());
        assert_eq!(
            lines(&d),
            [
                // Alone in the key: rewritten in place.
                "TakeOver(in place) route replace 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0",
                // Another key: deleted by its identity, then the add.
                "Add route add 10.1.2.0/24 via 10.0.2.22 dev eth1 table 254 proto 211 metric 0",
                "TakeOver route del 10.1.2.0/24 via 10.0.2.98 dev eth1 table 254 proto 4 metric 10",
                // A multipath route alone in the key is rewritten in place too.
                "TakeOver(in place) route replace 10.1.3.0/24 via 10.0.2.23 dev eth1 table 254 proto 211 metric 0",
                // A route the kernel made is never taken over.
                "Conflict ",
                "TakeOver(in place) route replace 10.1.5.0/24 via 10.0.2.25 dev eth1 table 254 proto 211 metric 0",
            ]
        );
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("10.1.4.0/24") && w.contains("never taken over")),
            "{:?}",
            d.warnings
        );
        // 10.1.6.0/24 is in no desired route's way: only a warning; table 100 is not looked at.
        assert!(d.warnings.iter().any(|w| w.contains("10.1.6.0/24")));
        // Without the flag the same routes are conflicts.
        let plain = diff(&desired, &observed, &policy());
        assert!(plain.changes.iter().all(|c| c.action == Action::Conflict));
    }

    #[test]
    fn take_over_deletes_a_multipath_route_by_its_next_hops_and_ipv6_by_its_source() {
        let observed = parse_routes(
            br#"[
            {"dst":"10.1.3.0/24","nexthops":[{"gateway":"10.0.2.23","dev":"eth1"},{"gateway":"10.0.2.24","dev":"eth1"}],"protocol":"3","metric":5,"table":"254"},
            {"dst":"fd01:1::/64","from":"fd00:9::/64","gateway":"fd00::99","dev":"eth1","protocol":"3","metric":1024,"table":"254"}
        ]"#,
        )
        .unwrap();
        let v6 = Route::unicast(
            "fd01:1::/64".parse().unwrap(),
            "fd00::21".parse().unwrap(),
            Some("eth1"),
            211,
            0,
        );
        let d = diff(
            &[want("10.1.3.0/24", "10.0.2.23"), v6],
            &observed,
            &take_over_policy(),
        );
        assert_eq!(
            lines(&d),
            [
                "Add route add 10.1.3.0/24 via 10.0.2.23 dev eth1 table 254 proto 211 metric 0",
                "TakeOver route del 10.1.3.0/24 table 254 proto 3 metric 5 nexthop via 10.0.2.23 dev eth1 nexthop via 10.0.2.24 dev eth1",
                // Another source prefix is another key in IPv6: deleted with its `from`.
                "Add route add fd01:1::/64 via fd00::21 dev eth1 table 254 proto 211 metric 1024",
                "TakeOver route del fd01:1::/64 from fd00:9::/64 via fd00::99 dev eth1 table 254 proto 3 metric 1024",
            ]
        );
    }

    #[test]
    fn take_over_beside_an_owned_route_sharing_the_key_deletes_both_then_adds() {
        // IPv4 `ip route append`: an owned and a foreign route in the desired route's key.
        let observed = parse_routes(
            br#"[
            {"dst":"10.1.1.0/24","gateway":"10.0.2.98","dev":"eth1","protocol":"211","table":"254"},
            {"dst":"10.1.1.0/24","gateway":"10.0.2.99","dev":"eth1","protocol":"3","table":"254"}
        ]"#,
        )
        .unwrap();
        let d = diff(
            &[want("10.1.1.0/24", "10.0.2.21")],
            &observed,
            &take_over_policy(),
        );
        assert_eq!(
            lines(&d),
            [
                "Add route add 10.1.1.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0",
                "TakeOver route del 10.1.1.0/24 via 10.0.2.99 dev eth1 table 254 proto 3 metric 0",
                // Another route shares its key, so the delete names the device too.
                "Delete route del 10.1.1.0/24 via 10.0.2.98 dev eth1 table 254 proto 211 metric 0",
            ]
        );
    }

    #[test]
    fn owned_route_with_another_metric_is_replaced_by_add_and_delete() {
        let observed = [via("10.1.1.0/24", "10.0.2.21", 211, 50, 254)];
        let d = diff(&[want("10.1.1.0/24", "10.0.2.21")], &observed, &policy());
        assert_eq!(
            actions(&d),
            [
                "Add 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
                "Delete 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211 metric 50",
            ]
        );
    }
}
