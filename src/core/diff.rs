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
use crate::core::route::{Destination, Route, TABLE_MAIN};

/// What the diff needs besides the routes.
#[derive(Debug, Clone)]
pub struct Policy {
    /// routectl's protocol number.
    pub protocol: u8,
    /// The cluster's pod ranges: foreign routes inside them are worth a warning.
    pub pod_ranges: Vec<IpNet>,
}

/// The ownership rule: the only routes routectl may ever change or delete.
pub fn is_owned(route: &Route, protocol: u8) -> bool {
    route.table == TABLE_MAIN && route.protocol == protocol && !route.dst.is_default()
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
    // Table main grouped by destination (a stable sort keeps `ip`'s order within a group), so
    // that a destination's routes are found by binary search.
    let mut by_dst: Vec<&Route> = main.clone();
    by_dst.sort_by(|a, b| a.dst.cmp(&b.dst));
    let routes_to = |dst: &Destination| -> &[&Route] {
        let start = by_dst.partition_point(|r| r.dst < *dst);
        let end = start + by_dst[start..].partition_point(|r| r.dst == *dst);
        &by_dst[start..end]
    };

    let mut changes = Vec::new();
    let mut in_sync = 0;
    let mut warnings = Vec::new();
    let mut relevant: Vec<&Route> = Vec::new();
    // Owned routes that a desired route accounts for (kept or replaced in place), by address.
    let mut claimed: HashSet<*const Route> = HashSet::new();

    for want in desired {
        let here = routes_to(&want.dst);
        relevant.extend(here.iter().copied());
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
            .filter(|r| r.forwards_like(want) || !foreign_shares_key)
        {
            claimed.insert(std::ptr::from_ref::<Route>(mine));
            if mine.forwards_like(want) {
                in_sync += 1;
            } else {
                changes.push(Change::new(
                    Action::Replace,
                    want.clone(),
                    Some((*mine).clone()),
                ));
            }
            for f in foreign {
                warnings.push(format!(
                    "foreign route `{f}` to the same destination as routectl's `{want}`"
                ));
            }
            continue;
        }
        match (foreign.next(), foreign.next()) {
            (None, _) => changes.push(Change::new(Action::Add, want.clone(), None)),
            (Some(f), None) if f.same_key(want) && f.forwards_like(want) => {
                changes.push(Change::new(Action::Adopt, want.clone(), Some((*f).clone())));
            }
            _ => {
                for f in here.iter().filter(|r| !is_owned(r, policy.protocol)) {
                    changes.push(Change::new(
                        Action::Conflict,
                        want.clone(),
                        Some((*f).clone()),
                    ));
                }
            }
        }
    }

    // Owned routes no desired route accounts for: delete.
    for r in &main {
        if is_owned(r, policy.protocol) && !claimed.contains(&std::ptr::from_ref::<Route>(r)) {
            relevant.push(r);
            if matches!(r.dst, Destination::Net(_)) {
                changes.push(Change::new(
                    Action::Delete,
                    (*r).clone(),
                    Some((*r).clone()),
                ));
            } else {
                warnings.push(format!(
                    "owned route `{r}` has a destination routectl cannot read; left alone"
                ));
            }
        }
    }

    // Foreign routes inside the pod ranges that no desired route explains.
    let desired_dsts: BTreeMap<&Destination, ()> = desired.iter().map(|d| (&d.dst, ())).collect();
    for r in &main {
        if is_owned(r, policy.protocol) || desired_dsts.contains_key(&r.dst) {
            continue;
        }
        if let Destination::Net(n) = &r.dst
            && policy.pod_ranges.iter().any(|range| range.contains(n))
            && r.protocol != 2
        {
            warnings.push(format!(
                "foreign route `{r}` lies inside the cluster's pod range; left alone"
            ));
        }
    }

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

    fn policy() -> Policy {
        Policy {
            protocol: 211,
            pod_ranges: vec!["10.1.0.0/16".parse().unwrap()],
        }
    }

    fn want(dst: &str, gw: &str) -> Route {
        Route::unicast(dst.parse().unwrap(), gw.parse().unwrap(), "eth1", 211, 0)
    }

    /// An observed route `DST via GW dev eth1 proto PROTOCOL metric METRIC table TABLE`
    /// (`default` for 0.0.0.0/0).
    fn via(dst: &str, gw: &str, protocol: u8, metric: u32, table: u32) -> Route {
        let dst = if dst == "default" { "0.0.0.0/0" } else { dst };
        let mut r = Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            "eth1",
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
            protocol: 2,
            metric: 0,
            tos: 0,
            from: None,
            next_hop: NextHop::Single(Hop {
                gateway: None,
                dev: Some("eth1".to_string()),
            }),
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
