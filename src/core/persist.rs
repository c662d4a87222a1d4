//! What manages a node's route interface, and routectl's routes kept by systemd-networkd.
//!
//! systemd-networkd removes every route on a link it did not configure itself whenever it
//! reconfigures the link (`networkctl reconfigure`, a restart, `netplan apply`, `networkctl
//! reload` after a change to the link's files): it drops and re-adds the address, and the kernel
//! flushes the routes through it without a route-deletion event. Routes networkd configures
//! itself survive all of that and a reboot. With `persist = "networkd"`, routectl therefore also
//! writes the node's routes as a networkd drop-in, `/etc/systemd/network/<network file>.d/`
//! [`DROPIN_NAME`], for the file that configures the route interface.
//!
//! Pure: the facts come from one read of the node ([`NodeFacts::parse`] reads what the read
//! script prints), the drop-in is rendered and parsed here, and the plan's part of it
//! ([`PersistPlan`]) and the warnings are decided here.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::core::route::{Destination, NextHop, Route};

/// The name of routectl's drop-in in a `.network` file's drop-in directory.
pub const DROPIN_NAME: &str = "50-routectl.conf";

/// Where routectl writes drop-ins (networkd reads drop-ins for a file in any of its directories
/// from every directory, so this works for netplan's files in /run and vendor files in /usr too).
pub const DROPIN_ROOT: &str = "/etc/systemd/network";

/// The line that starts the facts in the read's output (after the `ip -j` array).
pub const FACTS_MARKER: &str = "#routectl-facts 1";

/// Why the facts of a plan from snapshots are unknown (`plan --observed`): such a plan leaves the
/// drop-in alone (with a warning) instead of failing the node.
pub const FROM_SNAPSHOT: &str = "planned from a snapshot";

/// What stands for a drop-in (or drop-in directory) that is a symbolic link: the read does not
/// follow it, and the plan shows it replaced by the file.
pub const LINK_PLACEHOLDER: &str = "# (a symbolic link: not read, not followed)\n";

/// The line after which the rest of the output is the drop-in's content.
pub const DROPIN_MARKER: &str = "#routectl-dropin";

/// One read of a node: its routes and, from the same command, what manages its route interface
/// (`Err`: why that is not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRead {
    /// Every route of every table.
    pub routes: Vec<Route>,
    /// The facts about the route interface.
    pub facts: Result<NodeFacts, String>,
}

impl NodeRead {
    /// A read without facts (a snapshot, a test): `why` says why.
    pub fn routes_only(routes: Vec<Route>, why: &str) -> NodeRead {
        NodeRead {
            routes,
            facts: Err(why.to_string()),
        }
    }

    /// What manages the route interface.
    pub fn manager(&self) -> Manager {
        manager_of(&self.facts)
    }
}

/// The manager from facts, or unknown with the reason.
pub fn manager_of(facts: &Result<NodeFacts, String>) -> Manager {
    match facts {
        Ok(f) => f.manager(),
        Err(why) => Manager::Unknown(why.clone()),
    }
}

/// How routectl keeps a node's routes across its network manager's reconfigurations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Persist {
    /// Routes live only in the kernel (lost on reconfigure and reboot).
    #[default]
    None,
    /// Routes are also written as a systemd-networkd drop-in.
    Networkd,
}

impl Persist {
    /// Every accepted name.
    pub const NAMES: [&'static str; 2] = ["none", "networkd"];

    /// The name in the topology and in output.
    pub fn name(self) -> &'static str {
        match self {
            Persist::None => "none",
            Persist::Networkd => "networkd",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Persist> {
        match s {
            "none" => Some(Persist::None),
            "networkd" => Some(Persist::Networkd),
            _ => None,
        }
    }
}

/// What a node's read found about its route interface (the raw facts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// The interface the facts are about.
    pub interface: String,
    /// `NETWORK_FILE=` of the link in `/run/systemd/netif/links/<ifindex>`.
    pub network_file: Option<String>,
    /// `ADMIN_STATE=` of the link (configured, unmanaged, ...).
    pub admin_state: Option<String>,
    /// A `systemd-networkd` process runs.
    pub networkd_running: bool,
    /// A `NetworkManager` process runs.
    pub networkmanager_running: bool,
    /// NetworkManager keeps state for the link (`/run/NetworkManager/devices/<ifindex>`).
    pub networkmanager_device: bool,
    /// ifupdown brought the link up (`/run/network/ifstate.<iface>`).
    pub ifupdown: bool,
    /// The content of routectl's drop-in for the link's network file, when it exists.
    pub dropin: Option<String>,
}

/// What manages the route interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// systemd-networkd, through `network_file` (generated by netplan when `netplan`).
    Networkd {
        /// The `.network` file that configures the link.
        network_file: String,
        /// The file is netplan's (`/run/systemd/network/10-netplan-*.network`).
        netplan: bool,
        /// A networkd process runs now.
        running: bool,
    },
    /// NetworkManager.
    NetworkManager,
    /// ifupdown (`/etc/network/interfaces`).
    Ifupdown,
    /// Nothing: the interface is configured by hand or by the container's init.
    Nothing,
    /// Not known: the facts were not read (a network namespace, a snapshot) or were unreadable.
    Unknown(String),
}

impl Manager {
    /// The manager's name in output.
    pub fn name(&self) -> &'static str {
        match self {
            Manager::Networkd { netplan: true, .. } => "netplan/systemd-networkd",
            Manager::Networkd { .. } => "systemd-networkd",
            Manager::NetworkManager => "NetworkManager",
            Manager::Ifupdown => "ifupdown",
            Manager::Nothing => "none",
            Manager::Unknown(_) => "unknown",
        }
    }

    /// One line for people: the name and where its configuration is.
    pub fn describe(&self) -> String {
        match self {
            Manager::Networkd {
                network_file,
                running,
                ..
            } => format!(
                "{} ({network_file}{})",
                self.name(),
                if *running {
                    ""
                } else {
                    "; networkd not running"
                }
            ),
            Manager::Unknown(why) => format!("unknown ({why})"),
            _ => self.name().to_string(),
        }
    }

    /// The actions of this manager that remove routes it did not configure, as people type them.
    pub fn flushing_actions(&self, iface: &str) -> Vec<String> {
        match self {
            Manager::Networkd { netplan, .. } => {
                let mut v = vec![
                    format!("`networkctl reconfigure {iface}`"),
                    "`systemctl restart systemd-networkd`".to_string(),
                    "`networkctl reload` after a change to the link's files".to_string(),
                ];
                if *netplan {
                    v.push("`netplan apply`".to_string());
                }
                v.push("a reboot".to_string());
                v
            }
            Manager::NetworkManager => vec![
                "`nmcli connection up` or `nmcli device reapply`".to_string(),
                "a restart of NetworkManager".to_string(),
                "a reboot".to_string(),
            ],
            Manager::Ifupdown => vec![
                format!("`ifdown {iface}` / `ifup {iface}`"),
                "`systemctl restart networking`".to_string(),
                "a reboot".to_string(),
            ],
            Manager::Nothing | Manager::Unknown(_) => Vec::new(),
        }
    }

    /// The drop-in's path for a networkd-managed interface.
    pub fn dropin_path(&self) -> Option<String> {
        match self {
            Manager::Networkd { network_file, .. } => Some(dropin_path(network_file)),
            _ => None,
        }
    }
}

/// The drop-in for a `.network` file: `/etc/systemd/network/<file name>.d/50-routectl.conf`.
pub fn dropin_path(network_file: &str) -> String {
    format!(
        "{DROPIN_ROOT}/{}.d/{DROPIN_NAME}",
        network_file.rsplit('/').next().unwrap_or(network_file)
    )
}

/// A file name networkd could have loaded: `NAME.network`, no `/`, no control characters.
fn plausible_network_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    path.starts_with('/')
        && name.len() > ".network".len()
        && name.ends_with(".network")
        && !name.starts_with('.')
        && !path.contains("/../")
        && path
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '\\')
}

impl NodeFacts {
    /// Parses what the read script prints after [`FACTS_MARKER`]: `KEY=VALUE` lines, then
    /// optionally [`DROPIN_MARKER`] and the drop-in's bytes. Unknown keys are ignored.
    pub fn parse(interface: &str, text: &str) -> NodeFacts {
        let mut f = NodeFacts {
            interface: interface.to_string(),
            ..NodeFacts::default()
        };
        let (head, dropin) = match text.split_once(&format!("\n{DROPIN_MARKER}\n")) {
            Some((head, rest)) => (head, Some(rest)),
            None => match text.strip_prefix(&format!("{DROPIN_MARKER}\n")) {
                Some(rest) => ("", Some(rest)),
                None => (text, None),
            },
        };
        let mut link = false;
        for line in head.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "NETWORK_FILE" if !v.is_empty() => f.network_file = Some(v.to_string()),
                "ADMIN_STATE" if !v.is_empty() => f.admin_state = Some(v.to_string()),
                "proc" => match v {
                    "systemd-network" | "systemd-networkd" => f.networkd_running = true,
                    "NetworkManager" => f.networkmanager_running = true,
                    _ => {}
                },
                "nm_device" => f.networkmanager_device = v == "1",
                "dropin_link" if v == "1" => link = true,
                "ifupdown" => f.ifupdown = v == "1",
                _ => {}
            }
        }
        f.dropin = dropin.map(str::to_string);
        if link && f.dropin.is_none() {
            // Not followed (it could point anywhere); apply replaces the link with the file.
            f.dropin = Some(LINK_PLACEHOLDER.to_string());
        }
        f
    }

    /// What manages the interface, judged from the facts.
    pub fn manager(&self) -> Manager {
        let unmanaged = self.admin_state.as_deref() == Some("unmanaged");
        match &self.network_file {
            Some(file) if !unmanaged => {
                if !plausible_network_file(file) {
                    return Manager::Unknown(format!(
                        "networkd names `{}` as the network file of {}, which is not a file \
                         name routectl writes a drop-in for",
                        file.escape_default(),
                        self.interface
                    ));
                }
                Manager::Networkd {
                    network_file: file.clone(),
                    netplan: file.starts_with("/run/systemd/network/10-netplan-"),
                    running: self.networkd_running,
                }
            }
            _ if self.networkmanager_running && self.networkmanager_device => {
                Manager::NetworkManager
            }
            _ if self.ifupdown => Manager::Ifupdown,
            _ => Manager::Nothing,
        }
    }
}

/// One `[Route]` section, as written or read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DropinRoute {
    /// `Destination=`.
    pub destination: String,
    /// `Gateway=`.
    pub gateway: Option<String>,
    /// `Protocol=`.
    pub protocol: Option<String>,
    /// `Metric=`.
    pub metric: Option<String>,
}

/// The `[Route]` of a route routectl writes, when networkd can express it (a unicast route in
/// table main through one gateway).
fn dropin_route(r: &Route) -> Option<DropinRoute> {
    let Destination::Net(dst) = &r.dst else {
        return None;
    };
    let NextHop::Single(hop) = &r.next_hop else {
        return None;
    };
    let gw: IpAddr = hop.gateway?;
    Some(DropinRoute {
        destination: IpNet::to_string(dst),
        gateway: Some(gw.to_string()),
        protocol: Some(r.protocol.to_string()),
        metric: Some(r.metric.to_string()),
    })
}

/// The drop-in's content for a node's routes (the desired routes routectl owns on the node).
pub fn render(node: &str, routes: &[Route]) -> String {
    let mut sections: Vec<DropinRoute> = routes.iter().filter_map(dropin_route).collect();
    sections.sort();
    sections.dedup();
    let mut s = format!(
        "# Written by routectl for node {node}: its routes, so that systemd-networkd keeps them.\n\
         # routectl rewrites this file on apply; set persist = \"none\" and apply to remove it.\n"
    );
    for r in &sections {
        s.push_str("\n[Route]\n");
        let _ = writeln!(s, "Destination={}", r.destination);
        if let Some(g) = &r.gateway {
            let _ = writeln!(s, "Gateway={g}");
        }
        if let Some(p) = &r.protocol {
            let _ = writeln!(s, "Protocol={p}");
        }
        if let Some(m) = &r.metric {
            let _ = writeln!(s, "Metric={m}");
        }
    }
    s
}

/// The `[Route]` sections of a drop-in (as networkd reads them: `#`/`;` comments, keys of other
/// sections ignored; a later key in a section overrides an earlier one).
pub fn parse(content: &str) -> Vec<DropinRoute> {
    let mut out = Vec::new();
    let mut cur: Option<DropinRoute> = None;
    let flush = |cur: &mut Option<DropinRoute>, out: &mut Vec<DropinRoute>| {
        if let Some(r) = cur.take() {
            out.push(r);
        }
    };
    for raw in content.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            flush(&mut cur, &mut out);
            if line == "[Route]" {
                cur = Some(DropinRoute {
                    destination: String::new(),
                    gateway: None,
                    protocol: None,
                    metric: None,
                });
            }
            continue;
        }
        let (Some(r), Some((k, v))) = (cur.as_mut(), line.split_once('=')) else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "Destination" => r.destination = v,
            "Gateway" => r.gateway = Some(v),
            "Protocol" => r.protocol = Some(v),
            "Metric" => r.metric = Some(v),
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// What a plan does about a node's drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistPlan {
    /// Nothing: persistence is off and there is no drop-in of routectl's, or the facts are
    /// unknown (a plan from snapshots).
    Off,
    /// The drop-in is as it should be.
    InSync {
        /// The drop-in's path on the node.
        path: String,
    },
    /// The drop-in must be written (created when `old` is `None`).
    Write {
        /// The drop-in's path on the node.
        path: String,
        /// What is there now.
        old: Option<String>,
        /// What apply writes.
        new: String,
    },
    /// Persistence is off but a drop-in of routectl's is there: apply removes it.
    Remove {
        /// The drop-in's path on the node.
        path: String,
        /// What is there now.
        old: String,
    },
}

impl PersistPlan {
    /// True when apply has something to do.
    pub fn is_pending(&self) -> bool {
        matches!(self, PersistPlan::Write { .. } | PersistPlan::Remove { .. })
    }

    /// The state's name in output.
    pub fn state(&self) -> &'static str {
        match self {
            PersistPlan::Off => "off",
            PersistPlan::InSync { .. } => "in-sync",
            PersistPlan::Write { old: None, .. } => "create",
            PersistPlan::Write { .. } => "update",
            PersistPlan::Remove { .. } => "remove",
        }
    }

    /// The drop-in's path, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            PersistPlan::Off => None,
            PersistPlan::InSync { path }
            | PersistPlan::Write { path, .. }
            | PersistPlan::Remove { path, .. } => Some(path),
        }
    }

    /// The content before and after apply.
    pub fn contents(&self) -> (Option<&str>, Option<&str>) {
        match self {
            PersistPlan::Off => (None, None),
            PersistPlan::InSync { .. } => (None, None),
            PersistPlan::Write { old, new, .. } => (old.as_deref(), Some(new.as_str())),
            PersistPlan::Remove { old, .. } => (Some(old.as_str()), None),
        }
    }

    /// Routes the drop-in gains and loses (from its parsed `[Route]` sections).
    pub fn route_changes(&self) -> (Vec<DropinRoute>, Vec<DropinRoute>) {
        let (old, new) = self.contents();
        let old = old.map(parse).unwrap_or_default();
        let new = new.map(parse).unwrap_or_default();
        let added = new.iter().filter(|r| !old.contains(r)).cloned().collect();
        let removed = old.iter().filter(|r| !new.contains(r)).cloned().collect();
        (added, removed)
    }
}

/// Why persistence cannot work on a node, when it cannot.
pub fn unpersistable(manager: &Manager, iface: &str) -> Option<String> {
    match manager {
        Manager::Networkd { .. } => None,
        Manager::Unknown(why) => Some(format!(
            "persist = \"networkd\" but what manages {iface} is not known: {why}"
        )),
        Manager::Nothing => Some(format!(
            "persist = \"networkd\" but systemd-networkd does not manage {iface} on this node \
             (no network file for it in /run/systemd/netif/links); nothing was written"
        )),
        other => Some(format!(
            "persist = \"networkd\" but {iface} is managed by {}, not systemd-networkd; nothing \
             was written (set persist = \"none\" for this node)",
            other.name()
        )),
    }
}

/// Decides the drop-in's part of a node's plan. `Err` is a reason the node cannot be persisted.
pub fn plan(
    persist: Persist,
    facts: Result<&NodeFacts, &str>,
    node: &str,
    iface: &str,
    desired: &[Route],
) -> Result<PersistPlan, String> {
    let facts = match facts {
        Ok(f) => f,
        Err(why) => {
            return match persist {
                Persist::None => Ok(PersistPlan::Off),
                Persist::Networkd if why == FROM_SNAPSHOT => Ok(PersistPlan::Off),
                Persist::Networkd => Err(format!(
                    "persist = \"networkd\" but what manages {iface} is not known ({why}); \
                     nothing was written"
                )),
            };
        }
    };
    let manager = facts.manager();
    match persist {
        Persist::None => Ok(match (manager.dropin_path(), &facts.dropin) {
            (Some(path), Some(old)) => PersistPlan::Remove {
                path,
                old: old.clone(),
            },
            _ => PersistPlan::Off,
        }),
        Persist::Networkd => {
            if let Some(why) = unpersistable(&manager, iface) {
                return Err(why);
            }
            let path = manager.dropin_path().unwrap_or_default();
            let new = render(node, desired);
            Ok(match &facts.dropin {
                Some(old) if *old == new => PersistPlan::InSync { path },
                old => PersistPlan::Write {
                    path,
                    old: old.clone(),
                    new,
                },
            })
        }
    }
}

/// The warning for a node whose manager would remove routectl's routes, if it would.
pub fn warning(persist: Persist, manager: &Manager, iface: &str, routes: usize) -> Option<String> {
    if persist == Persist::Networkd || routes == 0 {
        return None;
    }
    let actions = manager.flushing_actions(iface);
    if actions.is_empty() {
        return None;
    }
    let fix = match manager {
        Manager::Networkd { .. } => {
            "set persist = \"networkd\" (in [cluster] or on the node) so that routectl also writes \
             them as a networkd drop-in"
        }
        _ => {
            "routectl can persist routes only through systemd-networkd; run `routectl reconcile` to put them back"
        }
    };
    Some(format!(
        "{iface} is managed by {}: {} remove{} routectl's {routes} route{} on it; {fix} (see \
         docs/persistence.md)",
        manager.describe(),
        actions.join(", "),
        if actions.len() == 1 { "s" } else { "" },
        if routes == 1 { "" } else { "s" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, gw: &str) -> Route {
        Route::unicast(dst.parse().unwrap(), gw.parse().unwrap(), "eth1", 211, 0)
    }

    const NETWORKD: &str = "NETWORK_FILE=/etc/systemd/network/10-eth1.network\n\
                            ADMIN_STATE=configured\nproc=systemd-network\n";

    #[test]
    fn renders_one_route_section_per_route_sorted() {
        let text = render(
            "w0",
            &[
                r("10.2.1.0/24", "10.0.3.21"),
                r("10.2.0.0/24", "10.0.3.20"),
                Route::unicast(
                    "fd02::/64".parse().unwrap(),
                    "fd00::21".parse().unwrap(),
                    "eth1",
                    211,
                    0,
                ),
            ],
        );
        assert!(
            text.starts_with("# Written by routectl for node w0"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "\n[Route]\nDestination=10.2.0.0/24\nGateway=10.0.3.20\nProtocol=211\nMetric=0\n\
                 \n[Route]\nDestination=10.2.1.0/24\nGateway=10.0.3.21\nProtocol=211\nMetric=0\n\
                 \n[Route]\nDestination=fd02::/64\nGateway=fd00::21\nProtocol=211\nMetric=1024\n"
            ),
            "{text}"
        );
        // What is rendered parses back to the same routes.
        let parsed = parse(&text);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].destination, "10.2.0.0/24");
        assert_eq!(parsed[2].metric.as_deref(), Some("1024"));
    }

    #[test]
    fn parses_like_networkd() {
        let text = "[Match]\nName=eth1\n; comment\n[Route]\n# c\nDestination = 10.9.0.0/24\n\
                    Gateway=10.0.3.1\nGateway=10.0.3.2\n[Network]\nAddress=1.2.3.4/24\n[Route]\n\
                    Destination=10.8.0.0/16\n";
        let p = parse(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].destination, "10.9.0.0/24");
        assert_eq!(p[0].gateway.as_deref(), Some("10.0.3.2"));
        assert_eq!(p[1].gateway, None);
        assert_eq!(parse(""), vec![]);
    }

    #[test]
    fn facts_tell_the_manager() {
        let f = NodeFacts::parse("eth1", NETWORKD);
        assert_eq!(
            f.manager(),
            Manager::Networkd {
                network_file: "/etc/systemd/network/10-eth1.network".into(),
                netplan: false,
                running: true
            }
        );
        assert_eq!(
            f.manager().dropin_path().unwrap(),
            "/etc/systemd/network/10-eth1.network.d/50-routectl.conf"
        );
        let np = NodeFacts::parse(
            "eth1",
            "NETWORK_FILE=/run/systemd/network/10-netplan-eth1.network\nADMIN_STATE=configured\n",
        );
        assert_eq!(np.manager().name(), "netplan/systemd-networkd");
        assert_eq!(
            np.manager().dropin_path().unwrap(),
            "/etc/systemd/network/10-netplan-eth1.network.d/50-routectl.conf"
        );
        assert!(
            np.manager()
                .flushing_actions("eth1")
                .contains(&"`netplan apply`".to_string())
        );
        let unmanaged = NodeFacts::parse(
            "eth1",
            "NETWORK_FILE=/etc/systemd/network/x.network\nADMIN_STATE=unmanaged\n",
        );
        assert_eq!(unmanaged.manager(), Manager::Nothing);
        let nm = NodeFacts::parse("eth1", "proc=NetworkManager\nnm_device=1\n");
        assert_eq!(nm.manager(), Manager::NetworkManager);
        let ifup = NodeFacts::parse("eth1", "ifupdown=1\n");
        assert_eq!(ifup.manager(), Manager::Ifupdown);
        assert_eq!(NodeFacts::parse("eth1", "").manager(), Manager::Nothing);
        let odd = NodeFacts::parse("eth1", "NETWORK_FILE=/etc/x/../y\n");
        assert!(matches!(odd.manager(), Manager::Unknown(_)));
    }

    #[test]
    fn dropin_content_is_everything_after_its_marker() {
        let text = format!("{NETWORKD}{DROPIN_MARKER}\n[Route]\nDestination=10.2.0.0/24\n\nx=1\n");
        let f = NodeFacts::parse("eth1", &text);
        assert_eq!(
            f.dropin.as_deref(),
            Some("[Route]\nDestination=10.2.0.0/24\n\nx=1\n")
        );
        assert_eq!(
            f.network_file.as_deref(),
            Some("/etc/systemd/network/10-eth1.network")
        );
        let link = NodeFacts::parse("eth1", &format!("{NETWORKD}dropin_link=1\n"));
        assert_eq!(link.dropin.as_deref(), Some(LINK_PLACEHOLDER));
        let empty = NodeFacts::parse("eth1", &format!("{DROPIN_MARKER}\n"));
        assert_eq!(empty.dropin.as_deref(), Some(""));
        assert_eq!(NodeFacts::parse("eth1", NETWORKD).dropin, None);
    }

    #[test]
    fn plan_writes_only_when_content_changes() {
        let desired = [r("10.2.1.0/24", "10.0.3.21")];
        let mut f = NodeFacts::parse("eth1", NETWORKD);
        let p = plan(Persist::Networkd, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "create");
        assert!(p.is_pending());
        let (added, removed) = p.route_changes();
        assert_eq!((added.len(), removed.len()), (1, 0));
        f.dropin = Some(render("w0", &desired));
        let p = plan(Persist::Networkd, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "in-sync");
        assert!(!p.is_pending());
        // Edited by hand: pending again, and the structured change says what differs.
        f.dropin = Some(render("w0", &desired).replace("10.0.3.21", "10.0.3.99"));
        let p = plan(Persist::Networkd, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "update");
        let (added, removed) = p.route_changes();
        assert_eq!(added[0].gateway.as_deref(), Some("10.0.3.21"));
        assert_eq!(removed[0].gateway.as_deref(), Some("10.0.3.99"));
        // Turned off: the drop-in goes.
        let p = plan(Persist::None, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "remove");
        f.dropin = None;
        assert_eq!(
            plan(Persist::None, Ok(&f), "w0", "eth1", &desired).unwrap(),
            PersistPlan::Off
        );
    }

    #[test]
    fn plan_refuses_interfaces_networkd_does_not_manage() {
        let desired = [r("10.2.1.0/24", "10.0.3.21")];
        let none = NodeFacts::parse("eth1", "");
        let why = plan(Persist::Networkd, Ok(&none), "w0", "eth1", &desired).unwrap_err();
        assert!(
            why.contains("systemd-networkd does not manage eth1"),
            "{why}"
        );
        let nm = NodeFacts::parse("eth1", "proc=NetworkManager\nnm_device=1\n");
        let why = plan(Persist::Networkd, Ok(&nm), "w0", "eth1", &desired).unwrap_err();
        assert!(why.contains("managed by NetworkManager"), "{why}");
        let why = plan(Persist::Networkd, Err("a snapshot"), "w0", "eth1", &desired).unwrap_err();
        assert!(why.contains("a snapshot"), "{why}");
        assert_eq!(
            plan(Persist::None, Err("a snapshot"), "w0", "eth1", &desired).unwrap(),
            PersistPlan::Off
        );
    }

    #[test]
    fn warning_names_manager_actions_and_fix() {
        let m = NodeFacts::parse("eth1", NETWORKD).manager();
        let w = warning(Persist::None, &m, "eth1", 2).unwrap();
        assert!(w.contains("systemd-networkd"), "{w}");
        assert!(w.contains("`networkctl reconfigure eth1`"), "{w}");
        assert!(w.contains("persist = \"networkd\""), "{w}");
        assert!(w.contains("2 routes"), "{w}");
        assert_eq!(warning(Persist::Networkd, &m, "eth1", 2), None);
        assert_eq!(warning(Persist::None, &m, "eth1", 0), None);
        assert_eq!(warning(Persist::None, &Manager::Nothing, "eth1", 2), None);
    }
}
