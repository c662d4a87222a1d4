//! Plain values for the renderers' tests.

pub(crate) mod fixtures {
    //! Plain values for the renderers' tests.

    use crate::core::topology::{self, Topology};

    /// A three-node topology.
    pub fn topology() -> Topology {
        topology::parse(
            br#"
[cluster]
interface = "eth1"
[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "worker-1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "worker-2"
internal_ip = "10.0.2.22"
pod_cidr = "10.1.2.0/24"
"#,
            "t.toml",
            None,
        )
        .expect("topology")
    }
}

pub(crate) mod sample {
    //! A small plan with one change of every kind, for the renderers' tests.

    use crate::core::diff::Policy;
    use crate::core::plan::Plan;
    use crate::core::route::Route;
    use crate::core::topology::Topology;
    use crate::error::{CommandError, NodeError};

    /// `DST via GW dev eth1 proto PROTO`.
    pub fn route(dst: &str, gw: &str, proto: u8) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            proto,
            0,
        )
    }

    /// What a node that cannot be read says.
    pub fn stopped(node: &str) -> NodeError {
        NodeError::Command(CommandError::Status {
            argv: format!("lxc exec {node} -- ip route"),
            status: Some(1),
            stderr: "Error: Instance is not running\n".into(),
        })
    }

    /// worker-0: a replace, an add and a delete; worker-1: an adoptable route and a conflict;
    /// worker-2 cannot be read; worker-3 was left out.
    pub fn plan(t: &Topology, adopt: bool) -> Plan {
        let policy: Policy = Plan::policy(t);
        let observed = [
            Ok(vec![
                route("10.1.1.0/24", "10.0.2.99", 211),
                route("10.1.9.0/24", "10.0.2.20", 211),
            ]),
            Ok(vec![
                route("10.1.0.0/24", "10.0.2.20", 3),
                route("10.1.2.0/24", "10.0.2.98", 3),
            ]),
            Err(stopped("worker-2")),
        ];
        Plan {
            protocol: 211,
            adopt,
            take_over: false,
            nodes: t
                .nodes
                .iter()
                .zip(observed)
                .map(|(n, o)| Plan::node(t, n, &policy, o.map(Into::into)))
                .collect(),
            skipped: vec!["worker-3".into()],
            held_back: vec![],
            access: Default::default(),
        }
    }
}

pub(crate) mod sample_reports {
    //! Plain apply, show and check reports for the renderers' tests.

    use std::time::Duration;

    use super::sample::{route, stopped};
    use crate::core::applied::{LineFailure, NodeResult, Outcome, Report};
    use crate::core::change::{Action, Change};
    use crate::core::check;
    use crate::core::route::Family;
    use crate::core::show::{self, AddrCheck, CheckKind, Entry, Mark, NodeShow, NodeView};

    /// One node of each outcome.
    pub fn applied() -> Report {
        let node = |name: &str, outcome| NodeResult {
            name: name.into(),
            outcome,
            sent: vec![],
            failures: vec![],
            remaining: vec![],
            error: None,
            applied: 0,
            interrupted_write: false,
            record_error: None,
            dropin: None,
        };
        Report {
            nodes: vec![
                NodeResult {
                    sent: vec![
                        "route add 10.1.2.0/24 via 10.0.2.22 dev eth1 table 254 proto 211 metric 0"
                            .into(),
                        "route show table all".into(),
                    ],
                    applied: 1,
                    ..node("worker-0", Outcome::Converged)
                },
                NodeResult {
                    sent: vec![
                        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0"
                            .into(),
                    ],
                    failures: vec![LineFailure {
                        command: "route add 10.1.0.0/24 via 10.0.2.20 dev eth1 table 254 proto 211 metric 0"
                            .into(),
                        message: "Nexthop has invalid gateway.".into(),
                    }],
                    remaining: vec![Change::new(
                        Action::Add,
                        route("10.1.0.0/24", "10.0.2.20", 211),
                        None,
                    )],
                    ..node("worker-1", Outcome::Failed)
                },
                NodeResult {
                    error: Some(stopped("worker-2")),
                    ..node("worker-2", Outcome::Unreachable)
                },
                node("worker-3", Outcome::InSync),
            ],
            adopt: false,
            elapsed: Duration::from_millis(1234),
        }
    }

    /// worker-0 readable (an owned, a kernel and a missing route, two address checks),
    /// worker-1 not.
    pub fn shown() -> show::Report {
        let mut kernel = route("10.0.2.0/24", "10.0.2.1", 2);
        kernel.next_hop = crate::core::route::NextHop::Single(crate::core::route::Hop {
            gateway: None,
            dev: Some("eth1".into()),
        });
        show::Report {
            protocol: 211,
            nodes: vec![
                NodeShow {
                    name: "worker-0".into(),
                    instance: "lab-worker-0".into(),
                    state: Ok(NodeView {
                        entries: vec![
                            Entry {
                                mark: Mark::Kernel,
                                route: kernel,
                                note: None,
                            },
                            Entry {
                                mark: Mark::Owned,
                                route: route("10.1.1.0/24", "10.0.2.21", 211),
                                note: None,
                            },
                            Entry {
                                mark: Mark::DesiredMissing,
                                route: route("10.1.2.0/24", "10.0.2.22", 211),
                                note: Some("plan adds it".into()),
                            },
                        ],
                        other_tables: 3,
                        manager: crate::core::persist::Manager::Nothing,
                        persist: Ok(crate::core::persist::PersistPlan::Off),
                        checks: vec![
                            AddrCheck {
                                kind: CheckKind::InternalIp,
                                address: "10.0.2.20".parse().unwrap(),
                                pod_cidr: None,
                                interface: Some("eth1".into()),
                                found: vec![("eth1".into(), "10.0.2.20/24".into())],
                                ok: true,
                                message: "internal_ip 10.0.2.20 is on eth1".into(),
                            },
                            AddrCheck {
                                kind: CheckKind::PodGateway,
                                address: "10.1.0.1".parse().unwrap(),
                                pod_cidr: Some("10.1.0.0/24".parse().unwrap()),
                                interface: None,
                                found: vec![],
                                ok: false,
                                message: "pod gateway 10.1.0.1 is on no interface".into(),
                            },
                        ],
                        warnings: vec!["pod gateway 10.1.0.1 is on no interface".into()],
                        raw_routes: vec![],
                        last_applied: None,
                    }),
                },
                NodeShow {
                    name: "worker-1".into(),
                    instance: "worker-1".into(),
                    state: Err(stopped("worker-1")),
                },
            ],
            skipped: vec!["worker-2".into()],
            access: Default::default(),
        }
    }

    /// Three IPv4 nodes: worker-0 <-> worker-1 pass, worker-0 -> worker-2 fails one way,
    /// worker-2 could not be read.
    pub fn checked() -> check::Report {
        let names = ["worker-0", "worker-1", "worker-2"];
        let ip = |i: usize| format!("10.1.{i}.1").parse().unwrap();
        let net = |i: usize| format!("10.1.{i}.0/24").parse().unwrap();
        let path = |from: usize, to: usize, outcome, hints: Vec<String>| check::PathResult {
            probe: check::Probe {
                family: Family::Ipv4,
                from: names[from].into(),
                to: names[to].into(),
                source: ip(from),
                destination: ip(to),
                to_cidr: net(to),
                from_cidr: net(from),
            },
            outcome,
            hints,
        };
        check::Report {
            families: vec![(Family::Ipv4, names.iter().map(|n| n.to_string()).collect())],
            paths: vec![
                path(0, 1, check::Outcome::Pass { attempts: 1 }, vec![]),
                path(
                    0,
                    2,
                    check::Outcome::Fail {
                        attempts: 2,
                        detail: "100% packet loss".into(),
                    },
                    vec!["worker-2 has no route to 10.1.0.0/24".into()],
                ),
                path(1, 0, check::Outcome::Pass { attempts: 2 }, vec![]),
                path(
                    2,
                    0,
                    check::Outcome::NotRun {
                        reason: "worker-2 could not be read".into(),
                    },
                    vec![],
                ),
            ],
            unreadable: vec![("worker-2".into(), stopped("worker-2"))],
            asymmetric: vec![],
        }
    }
}
