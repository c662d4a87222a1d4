//! The last-applied record: what routectl installed on a node and when, bound to the topology's
//! digest and to what the node was when it was written (its boot, PID 1 and network namespace). It lives on the node (see
//! docs/operations.md, "The last-applied record"), is read in the same process as the routes, and
//! lets a plan tell drift (the node lost what routectl applied) from topology changes. Pure: the
//! read is in `node/transport/read_script.rs`, the write in `node/observe/write.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::change::{Action, Cause, Change};
use crate::core::route::{NextHop, Route};

/// The record's own format version (2: the binding is computed by the read, never stored in the
/// node; version 1 kept a nonce in `lo`'s alias).
pub const RECORD_VERSION: u32 = 2;

/// The directory of the records, inside the node (for network namespaces: on the host, one
/// file per namespace).
pub const RECORD_DIR: &str = "/run/routectl/last-applied";

/// What routectl last applied on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastApplied {
    /// [`RECORD_VERSION`].
    pub format_version: u32,
    /// When the apply finished, RFC 3339 UTC.
    pub applied_at: String,
    /// The same instant, seconds since the epoch.
    pub applied_at_unix: u64,
    /// The routectl that wrote it.
    pub routectl_version: String,
    /// The node's name in the topology.
    pub node: String,
    /// SHA-256 of the topology applied.
    pub topology_sha256: String,
    /// routectl's protocol number then.
    pub protocol: u8,
    /// What the node was when the record was written, as the read computes it (nothing is
    /// written into the node for it): in an LXD/Incus instance the boot id it sees, the start
    /// time of its PID 1 (`boot=… pid1=…`; records written by earlier builds also name the
    /// network namespace, `netns=net:[…]`, which [`same_binding`] leaves aside); for a
    /// network namespace, whose record is kept on this host, the boot id and the inode and
    /// ctime of `/run/netns/NAME` (`boot=… netns=… ctime=…`). A record whose binding is not what
    /// the node is now belongs to a node restarted or recreated since.
    pub binding: Option<String>,
    /// The routes routectl had installed and verified there, as `ip route` lines.
    pub routes: Vec<String>,
    /// Set by [`parse`], never stored: the record's binding is not what the node is now, so
    /// the node restarted (or was recreated) since the record was written, and every route
    /// in it that is missing now was lost with the restart.
    #[serde(skip)]
    pub restarted: bool,
}

/// The path of a node's record (`instance` may be `remote:name`, or for ssh `user@host` with
/// host an IPv6 address; the name, or the host, is what the node is).
pub fn record_path(instance: &str) -> String {
    let host = instance.rsplit('@').next().unwrap_or(instance);
    let name = if host.parse::<std::net::IpAddr>().is_ok() {
        host
    } else {
        host.rsplit(':').next().unwrap_or(host)
    };
    format!("{RECORD_DIR}/{name}.json")
}

/// How a route is written in a record (flags such as `linkdown` are state, not identity).
pub fn route_key(r: &Route) -> String {
    if r.flags.is_empty() {
        r.to_string()
    } else {
        let mut r = r.clone();
        r.flags.clear();
        r.to_string()
    }
}

/// Reads a record as printed by the node (`bytes` empty: there is none). `binding` is what the
/// node is now, computed with the routes. `Err` says why a record that exists is not used; what
/// it quotes of the record is the node's, shown capped and escaped.
pub fn parse(bytes: &[u8], binding: Option<&str>) -> Result<Option<LastApplied>, String> {
    use crate::core::text::shown;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let r: LastApplied = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the last-applied record is damaged ({}); ignored",
            shown(&e.to_string())
        )
    })?;
    if r.format_version != RECORD_VERSION {
        return Err(format!(
            "the last-applied record has format {} (this routectl writes {RECORD_VERSION}); ignored",
            r.format_version
        ));
    }
    let mut r = r;
    r.restarted = r
        .binding
        .as_deref()
        .is_some_and(|then| !binding.is_some_and(|now| same_binding(then, now)));
    Ok(Some(r))
}

/// Whether two bindings (`key=value` words) name the same node: they share a key, and every
/// key they share has the same value. A key only one of them has is not compared: a record
/// written when the read also named the container's network namespace (`netns=`, which lives
/// and dies with its PID 1) still matches the node it was written on.
pub fn same_binding(then: &str, now: &str) -> bool {
    let pairs = |b: &str| -> BTreeMap<String, String> {
        b.split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let (then, now) = (pairs(then), pairs(now));
    let mut shared = then.iter().filter(|(k, _)| now.contains_key(*k)).peekable();
    shared.peek().is_some() && shared.all(|(k, v)| now.get(k) == Some(v))
}

/// What a plan and `show` say of a node restarted since its last apply: `worker-2 restarted
/// since the last apply (at T): 2 routes lost` (the lost routes are the changes marked drift by
/// [`mark_causes`]). `None` for a node that did not restart.
pub fn restart_note(
    node: &str,
    record: Option<&LastApplied>,
    changes: &[Change],
) -> Option<String> {
    let r = record.filter(|r| r.restarted)?;
    let lost = changes
        .iter()
        .filter(|c| c.cause == Cause::Drift && c.action != Action::Delete)
        .count();
    Some(format!(
        "{} restarted since the last apply (at {}): {} lost",
        crate::core::text::escape(node),
        crate::core::text::shown(&r.applied_at),
        crate::core::text::count(lost, "route", "routes")
    ))
}

/// Sets every change's cause from the node's record: a desired route that routectl had
/// installed there and that needs work again is drift; an owned route to delete that routectl
/// never installed is drift (made with routectl's protocol outside routectl); everything else,
/// and everything on a node without a record, is the topology's.
pub fn mark_causes(changes: &mut [Change], record: Option<&LastApplied>) {
    let Some(record) = record else {
        for c in changes {
            c.cause = Cause::Topology;
        }
        return;
    };
    // A desired route without a device (ssh nodes) is recorded without one; the kernel's copy
    // of it, which a delete is about, names the device the kernel picked.
    let had = |r: &Route| {
        let key = route_key(r);
        let devless = without_dev(r).map(|r| route_key(&r));
        record
            .routes
            .iter()
            .any(|l| *l == key || devless.as_ref() == Some(l))
    };
    for c in changes {
        let drift = match c.action {
            Action::Delete => !had(&c.route),
            Action::Add | Action::Replace | Action::Adopt | Action::Conflict | Action::TakeOver => {
                had(&c.route)
            }
        };
        c.cause = if drift { Cause::Drift } else { Cause::Topology };
    }
}

/// `r` without its device, when it has a single next hop through a gateway and a device.
fn without_dev(r: &Route) -> Option<Route> {
    match &r.next_hop {
        NextHop::Single(h) if h.gateway.is_some() && h.dev.is_some() => {
            let mut r = r.clone();
            if let NextHop::Single(h) = &mut r.next_hop {
                h.dev = None;
            }
            Some(r)
        }
        _ => None,
    }
}

/// The record to write after an apply: the desired routes the read-back shows in place and owned
/// (every desired route that no remaining change is about).
#[allow(clippy::too_many_arguments)]
pub fn after_apply(
    node: &str,
    desired: &[Route],
    remaining: &[Change],
    topology_sha256: &str,
    protocol: u8,
    binding: Option<String>,
    now_unix: u64,
) -> LastApplied {
    let routes = desired
        .iter()
        .filter(|d| {
            !remaining
                .iter()
                .any(|c| c.action != Action::Delete && c.route == **d)
        })
        .map(route_key)
        .collect();
    LastApplied {
        format_version: RECORD_VERSION,
        applied_at: rfc3339(now_unix),
        applied_at_unix: now_unix,
        routectl_version: env!("CARGO_PKG_VERSION").to_string(),
        node: node.to_string(),
        topology_sha256: topology_sha256.to_string(),
        protocol,
        binding,
        routes,
        restarted: false,
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, gw: &str) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            211,
            0,
        )
    }

    fn record(routes: &[Route]) -> LastApplied {
        after_apply(
            "worker-0",
            routes,
            &[],
            "abc",
            211,
            Some("boot=b1 pid1=7 netns=net:[1]".into()),
            1_796_083_200,
        )
    }

    #[test]
    fn time_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_200 + 3_723), "2026-12-01T01:02:03Z");
    }

    #[test]
    fn a_devless_record_knows_the_kernels_copy_of_its_routes() {
        // ssh nodes without an interface: desired (and recorded) routes name no device, the
        // kernel's name the one it picked.
        let devless = |dst: &str, gw: &str| {
            Route::unicast(dst.parse().unwrap(), gw.parse().unwrap(), None, 211, 0)
        };
        let rec = record(&[devless("10.3.1.0/24", "10.0.4.21")]);
        let installed = route("10.3.1.0/24", "10.0.4.21");
        let mut changes = vec![
            Change::new(Action::Delete, installed.clone(), Some(installed.clone())),
            Change::new(Action::Add, devless("10.3.1.0/24", "10.0.4.21"), None),
        ];
        mark_causes(&mut changes, Some(&rec));
        let causes: Vec<Cause> = changes.iter().map(|c| c.cause).collect();
        assert_eq!(causes, [Cause::Topology, Cause::Drift]);
        // And the read-back verifies a dev-less add by the kernel's copy.
        let add = Change::new(Action::Add, devless("10.3.1.0/24", "10.0.4.21"), None);
        assert_eq!(crate::core::applied::verified(&[&add], &[installed]), 1);
    }

    #[test]
    fn causes_tell_drift_from_topology() {
        let a = route("10.1.1.0/24", "10.0.2.21");
        let b = route("10.1.2.0/24", "10.0.2.22");
        let b_new = route("10.1.2.0/24", "10.0.2.99");
        let stray = route("10.1.9.0/24", "10.0.2.29");
        let rec = record(&[a.clone(), b.clone()]);
        let mut changes = vec![
            // Deleted by hand: drift.
            Change::new(Action::Add, a.clone(), None),
            // The topology moved b's gateway: topology.
            Change::new(Action::Replace, b_new, Some(b.clone())),
            // An owned route routectl never installed: drift.
            Change::new(Action::Delete, stray.clone(), Some(stray.clone())),
            // An owned route the topology no longer wants: topology.
            Change::new(Action::Delete, b.clone(), Some(b.clone())),
        ];
        mark_causes(&mut changes, Some(&rec));
        let causes: Vec<Cause> = changes.iter().map(|c| c.cause).collect();
        assert_eq!(
            causes,
            [Cause::Drift, Cause::Topology, Cause::Drift, Cause::Topology]
        );
        mark_causes(&mut changes, None);
        assert!(changes.iter().all(|c| c.cause == Cause::Topology));
    }

    /// Bindings match on the keys both have; a record that also named the namespace matches
    /// the node it was written on, and one with nothing in common matches nothing.
    #[test]
    fn bindings_are_compared_on_the_keys_both_have() {
        let old = "boot=b1 pid1=7 netns=net:[1]";
        assert!(same_binding(old, "boot=b1 pid1=7"));
        assert!(same_binding("boot=b1 pid1=7", "boot=b1 pid1=7"));
        assert!(!same_binding(old, "boot=b1 pid1=8"));
        assert!(!same_binding(old, "boot=b2 pid1=7"));
        assert!(!same_binding("boot=b1 pid1=7", "boot=b1 pid1="));
        assert!(!same_binding("pid1=7", "ctime=7"));
        assert!(!same_binding("", ""));
        let rec = LastApplied {
            binding: Some(old.into()),
            ..record(&[route("10.1.1.0/24", "10.0.2.21")])
        };
        let text = serde_json::to_vec(&rec).unwrap();
        let now = parse(&text, Some("boot=b1 pid1=7")).unwrap().unwrap();
        assert!(!now.restarted);
        let since = parse(&text, Some("boot=b1 pid1=9")).unwrap().unwrap();
        assert!(since.restarted);
        assert!(parse(&text, None).unwrap().unwrap().restarted);
    }

    #[test]
    fn a_record_round_trips_and_another_instance_is_a_restart() {
        let rec = record(&[route("10.1.1.0/24", "10.0.2.21")]);
        let text = serde_json::to_vec(&rec).unwrap();
        assert_eq!(
            parse(&text, Some("boot=b1 pid1=7 netns=net:[1]")),
            Ok(Some(rec.clone()))
        );
        assert_eq!(parse(b"\n", None), Ok(None));
        // Another binding: the node restarted since; its lost routes are drift, and said.
        let then = parse(&text, Some("boot=b1 pid1=8 netns=net:[1]"))
            .unwrap()
            .unwrap();
        assert!(then.restarted && !rec.restarted);
        let mut lost = vec![Change::new(
            Action::Add,
            route("10.1.1.0/24", "10.0.2.21"),
            None,
        )];
        mark_causes(&mut lost, Some(&then));
        assert_eq!(lost[0].cause, Cause::Drift);
        assert_eq!(
            restart_note("worker-2", Some(&then), &lost).as_deref(),
            Some(&*format!(
                "worker-2 restarted since the last apply (at {}): 1 route lost",
                rec.applied_at
            ))
        );
        assert_eq!(restart_note("worker-2", Some(&rec), &lost), None);
        assert!(parse(b"{not json", None).unwrap_err().contains("damaged"));
        assert_eq!(
            record_path("remote:worker-0"),
            "/run/routectl/last-applied/worker-0.json"
        );
        // ssh destinations: the host, whole when it is an IPv6 address.
        assert_eq!(
            record_path("root@node-0.kubernetes.local"),
            "/run/routectl/last-applied/node-0.kubernetes.local.json"
        );
        assert_eq!(
            record_path("root@fd00:10::4"),
            "/run/routectl/last-applied/fd00:10::4.json"
        );
        assert_eq!(
            record_path("10.0.4.10"),
            "/run/routectl/last-applied/10.0.4.10.json"
        );
    }

    #[test]
    fn the_record_leaves_out_desired_routes_still_pending() {
        let a = route("10.1.1.0/24", "10.0.2.21");
        let b = route("10.1.2.0/24", "10.0.2.22");
        let rec = after_apply(
            "w",
            &[a.clone(), b.clone()],
            &[Change::new(Action::Conflict, b, None)],
            "x",
            211,
            None,
            0,
        );
        assert_eq!(rec.routes, [a.to_string()]);
    }
}
