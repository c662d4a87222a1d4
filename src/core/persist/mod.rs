//! What manages a node's route interface, and the file through which its manager keeps
//! routectl's routes.
//!
//! Every network manager removes the routes on a link it did not configure itself when it
//! reconfigures the link: it drops and re-adds the address, and the kernel flushes the routes
//! through it without a route-deletion event. routectl therefore also writes the node's routes
//! into one file of the manager's (the [`Mechanism`]):
//!
//! - systemd-networkd (and netplan over it): a drop-in,
//!   `/etc/systemd/network/<network file>.d/`[`DROPIN_NAME`], for the file that configures the
//!   interface; networkd then configures the routes itself (with routectl's protocol).
//! - NetworkManager (and netplan over it): a dispatcher script, [`NM_HOOK_PATH`], that puts the
//!   routes back with `ip` whenever NetworkManager brings the interface up. NetworkManager cannot
//!   give a route routectl's protocol (its own routes are `proto static`, beside routectl's).
//! - ifupdown: an `if-up.d` hook, [`IFUPDOWN_HOOK_PATH`], that does the same after `ifup`.
//!
//! Pure: the facts come from one read of the node ([`NodeFacts::parse`] reads what the read
//! script prints), the files are rendered and parsed here, and the plan's part of them
//! ([`PersistPlan`]) and the warnings are decided here.

use serde::Serialize;

use crate::core::route::Route;

mod facts;
mod files;

pub use facts::*;
pub use files::*;

/// routectl's NetworkManager dispatcher script (run as root on every device event; it acts
/// only on the route interface's `up`).
pub const NM_HOOK_PATH: &str = "/etc/NetworkManager/dispatcher.d/90-routectl";

/// routectl's ifupdown hook (run-parts skips names with a dot; Debian's NetworkManager also runs
/// these hooks on its `up` events).
pub const IFUPDOWN_HOOK_PATH: &str = "/etc/network/if-up.d/routectl";

/// The file routectl writes for a manager, and how the manager uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// A systemd-networkd drop-in with `[Route]` sections; loaded by `networkctl reload`.
    Networkd,
    /// A NetworkManager dispatcher script that puts the routes back on `up`.
    NetworkManager,
    /// An ifupdown `if-up.d` hook that puts the routes back after `ifup`.
    Ifupdown,
}

impl Mechanism {
    /// What the file is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Mechanism::Networkd => "networkd drop-in",
            Mechanism::NetworkManager => "NetworkManager dispatcher script",
            Mechanism::Ifupdown => "ifupdown if-up.d hook",
        }
    }

    /// The file's mode: the dispatcher runs only scripts owned by root, executable and not
    /// writable by group or others; run-parts only executable ones; networkd reads its drop-ins
    /// as its own user.
    pub fn mode(self) -> u32 {
        match self {
            Mechanism::Networkd => 0o644,
            Mechanism::NetworkManager | Mechanism::Ifupdown => 0o755,
        }
    }

    /// Whether the manager must be told to load the file (`networkctl reload`): the hooks act
    /// at the next event by themselves.
    pub fn reloads(self) -> bool {
        self == Mechanism::Networkd
    }

    /// The `persist` value that selects it.
    pub fn persist(self) -> Persist {
        match self {
            Mechanism::Networkd => Persist::Networkd,
            Mechanism::NetworkManager => Persist::NetworkManager,
            Mechanism::Ifupdown => Persist::Ifupdown,
        }
    }
}

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
    /// Routes are also written as a NetworkManager dispatcher script.
    #[serde(rename = "networkmanager")]
    NetworkManager,
    /// Routes are also written as an ifupdown hook.
    Ifupdown,
    /// Per node, through whatever manages its route interface (nothing where nothing does).
    Auto,
}

impl Persist {
    /// Every accepted name.
    pub const NAMES: [&'static str; 5] = ["none", "networkd", "networkmanager", "ifupdown", "auto"];

    /// The name in the topology and in output.
    pub fn name(self) -> &'static str {
        match self {
            Persist::None => "none",
            Persist::Networkd => "networkd",
            Persist::NetworkManager => "networkmanager",
            Persist::Ifupdown => "ifupdown",
            Persist::Auto => "auto",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Persist> {
        Persist::NAMES
            .iter()
            .zip([
                Persist::None,
                Persist::Networkd,
                Persist::NetworkManager,
                Persist::Ifupdown,
                Persist::Auto,
            ])
            .find(|(n, _)| **n == s)
            .map(|(_, p)| p)
    }
}

/// What a plan does about a node's persisted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistPlan {
    /// Nothing: persistence is off and there is no file of routectl's, nothing manages the
    /// interface (`persist = "auto"`), or the facts are unknown (a plan from snapshots).
    Off,
    /// The file is as it should be.
    InSync {
        /// Which file.
        mechanism: Mechanism,
        /// Its path on the node.
        path: String,
    },
    /// The file must be written (created when `old` is `None`).
    Write {
        /// Which file.
        mechanism: Mechanism,
        /// Its path on the node.
        path: String,
        /// What is there now.
        old: Option<String>,
        /// What apply writes.
        new: String,
    },
    /// A file of routectl's is there that should not be (persistence off, or another
    /// manager's): apply removes it.
    Remove {
        /// Which file.
        mechanism: Mechanism,
        /// Its path on the node.
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

    /// The file's path, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            PersistPlan::Off => None,
            PersistPlan::InSync { path, .. }
            | PersistPlan::Write { path, .. }
            | PersistPlan::Remove { path, .. } => Some(path),
        }
    }

    /// Which file, when there is one.
    pub fn mechanism(&self) -> Option<Mechanism> {
        match self {
            PersistPlan::Off => None,
            PersistPlan::InSync { mechanism, .. }
            | PersistPlan::Write { mechanism, .. }
            | PersistPlan::Remove { mechanism, .. } => Some(*mechanism),
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

    /// Routes the file gains and loses (from its parsed `[Route]` sections or route lines).
    pub fn route_changes(&self) -> (Vec<DropinRoute>, Vec<DropinRoute>) {
        let (old, new) = self.contents();
        let parse_as = |text: &str| match self.mechanism() {
            Some(Mechanism::Networkd) | None => parse(text),
            Some(_) => parse_hook(text),
        };
        let old = old.map(parse_as).unwrap_or_default();
        let new = new.map(parse_as).unwrap_or_default();
        let added = new.iter().filter(|r| !old.contains(r)).cloned().collect();
        let removed = old.iter().filter(|r| !new.contains(r)).cloned().collect();
        (added, removed)
    }
}

/// Why persistence as asked cannot work on a node, when it cannot (`persist = "auto"` works
/// everywhere what manages the interface is known).
pub fn unpersistable(persist: Persist, manager: &Manager, iface: &str) -> Option<String> {
    let want = match persist {
        Persist::None => return None,
        Persist::Auto => {
            return match manager {
                Manager::Unknown(why) => Some(format!(
                    "persist = \"auto\" but what manages {iface} is not known: {why}"
                )),
                _ => None,
            };
        }
        Persist::Networkd => Mechanism::Networkd,
        Persist::NetworkManager => Mechanism::NetworkManager,
        Persist::Ifupdown => Mechanism::Ifupdown,
    };
    let name = persist.name();
    match manager {
        m if m.mechanism() == Some(want) => None,
        Manager::Unknown(why) => Some(format!(
            "persist = \"{name}\" but what manages {iface} is not known: {why}"
        )),
        Manager::Nothing => Some(format!(
            "persist = \"{name}\" but nothing manages {iface} on this node (no networkd network \
             file, NetworkManager device or ifupdown state for it); nothing was written"
        )),
        other => Some(format!(
            "persist = \"{name}\" but {iface} is managed by {}; nothing was written (set \
             persist = \"auto\" or \"{}\" for this node)",
            other.name(),
            other.mechanism().map_or("none", |m| m.persist().name())
        )),
    }
}

/// Decides the persisted file's part of a node's plan. `Err` is a reason the node cannot be
/// persisted.
pub fn plan(
    persist: Persist,
    facts: Result<&NodeFacts, &str>,
    node: &str,
    iface: &str,
    desired: &[Route],
) -> Result<PersistPlan, String> {
    let facts = match facts {
        Ok(f) => f,
        Err(why) if persist == Persist::None || why == FROM_SNAPSHOT => {
            return Ok(PersistPlan::Off);
        }
        Err(why) => {
            return Err(format!(
                "persist = \"{}\" but what manages {iface} is not known ({why}); nothing was \
                 written",
                persist.name()
            ));
        }
    };
    let manager = facts.manager();
    if let Some(why) = unpersistable(persist, &manager, iface) {
        return Err(why);
    }
    let chosen = match persist {
        Persist::None => None,
        _ => manager.mechanism(),
    };
    if let (Some(mechanism), Some(path)) = (chosen, manager.persist_path()) {
        let new = render_for(mechanism, node, iface, desired);
        let plan = match facts.file(mechanism) {
            Some(old) if old == new => PersistPlan::InSync { mechanism, path },
            old => PersistPlan::Write {
                mechanism,
                path,
                old: old.map(str::to_string),
                new,
            },
        };
        if plan.is_pending() {
            return Ok(plan);
        }
        return Ok(leftover(facts, &manager, chosen).unwrap_or(plan));
    }
    Ok(leftover(facts, &manager, None).unwrap_or(PersistPlan::Off))
}

/// A file of routectl's that is there but not the one in use (`keep`): the first to remove.
fn leftover(facts: &NodeFacts, manager: &Manager, keep: Option<Mechanism>) -> Option<PersistPlan> {
    let candidates = [
        (Mechanism::Networkd, manager.dropin_path()),
        (Mechanism::NetworkManager, Some(NM_HOOK_PATH.to_string())),
        (Mechanism::Ifupdown, Some(IFUPDOWN_HOOK_PATH.to_string())),
    ];
    candidates.into_iter().find_map(|(mechanism, path)| {
        let old = facts.file(mechanism)?;
        let path = path?;
        (Some(mechanism) != keep).then(|| PersistPlan::Remove {
            mechanism,
            path,
            old: old.to_string(),
        })
    })
}

/// The warning for a node whose manager would remove routectl's routes, or which persists
/// nothing under `persist = "auto"`, if it would.
pub fn warning(persist: Persist, manager: &Manager, iface: &str, routes: usize) -> Option<String> {
    if routes == 0 {
        return None;
    }
    let routes = crate::core::text::count(routes, "route", "routes");
    if persist == Persist::Auto && *manager == Manager::Nothing {
        return Some(format!(
            "persist = \"auto\": nothing manages {iface} on this node, so routectl persists \
             nothing there; its {routes} on {iface} are lost at a reboot (`routectl \
             reconcile` puts them back)"
        ));
    }
    if persist != Persist::None {
        return None;
    }
    let actions = manager.flushing_actions(iface);
    let mechanism = manager.mechanism()?;
    if actions.is_empty() {
        return None;
    }
    Some(format!(
        "{iface} is managed by {}: {} remove{} routectl's {routes} on it; set \
         persist = \"{}\" or \"auto\" (in [cluster] or on the node) so that routectl also \
         writes them as a {} (see docs/persistence.md)",
        manager.describe(),
        actions.join(", "),
        if actions.len() == 1 { "s" } else { "" },
        mechanism.persist().name(),
        mechanism.describe(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, gw: &str) -> Route {
        Route::unicast(
            dst.parse().unwrap(),
            gw.parse().unwrap(),
            Some("eth1"),
            211,
            0,
        )
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
                    Some("eth1"),
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
        assert_eq!(nm.manager(), Manager::NetworkManager { netplan: false });
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
        assert!(why.contains("nothing manages eth1"), "{why}");
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
        assert!(w.contains("persist = \"networkd\" or \"auto\""), "{w}");
        assert!(w.contains("2 routes"), "{w}");
        assert_eq!(warning(Persist::Networkd, &m, "eth1", 2), None);
        assert_eq!(warning(Persist::Auto, &m, "eth1", 2), None);
        assert_eq!(warning(Persist::None, &m, "eth1", 0), None);
        assert_eq!(warning(Persist::None, &Manager::Nothing, "eth1", 2), None);
        // Measured: reapply, connection reload and a restart of NetworkManager keep the routes;
        // they are not named. netplan's apply is named only where netplan writes the connection.
        let nm = Manager::NetworkManager { netplan: false };
        let w = warning(Persist::None, &nm, "eth1", 1).unwrap();
        assert!(
            w.contains("`nmcli connection up` of eth1's connection"),
            "{w}"
        );
        assert!(w.contains("`nmcli networking off` and `on`"), "{w}");
        assert!(
            !w.contains("reapply") && !w.contains("restart of NetworkManager"),
            "{w}"
        );
        assert!(!w.contains("netplan"), "{w}");
        assert!(w.contains("\"networkmanager\""), "{w}");
        assert!(w.contains("dispatcher script"), "{w}");
        let np = Manager::NetworkManager { netplan: true };
        let w = warning(Persist::None, &np, "eth1", 1).unwrap();
        assert!(
            w.contains("netplan/NetworkManager") && w.contains("`netplan apply`"),
            "{w}"
        );
        let w = warning(Persist::None, &Manager::Ifupdown, "eth1", 3).unwrap();
        assert!(w.contains("`ifdown eth1` and `ifup eth1`"), "{w}");
        assert!(w.contains("`systemctl restart networking`"), "{w}");
        assert!(
            w.contains("\"ifupdown\"") && w.contains("if-up.d hook"),
            "{w}"
        );
        // auto on an interface nothing manages: says that nothing is persisted.
        let w = warning(Persist::Auto, &Manager::Nothing, "eth1", 2).unwrap();
        assert!(w.contains("persists nothing"), "{w}");
    }

    #[test]
    fn base64_round_trips_like_coreutils() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("#!/bin/sh\n", "IyEvYmluL3NoCg=="),
        ] {
            assert_eq!(encode_base64(raw.as_bytes()), enc);
            assert_eq!(decode_base64(enc).as_deref(), Some(raw));
        }
        assert_eq!(decode_base64("Zg="), None);
        assert_eq!(decode_base64("Z!=="), None);
        assert_eq!(decode_base64("===="), None);
        // A damaged encoding in a read stands for a file that must be rewritten.
        let f = NodeFacts::parse("eth1", "nm_hook=@@@\nifupdown_hook=IyEvYmluL3NoCg==\n");
        assert_eq!(f.nm_hook.as_deref(), Some(UNREADABLE));
        assert_eq!(f.ifupdown_hook.as_deref(), Some("#!/bin/sh\n"));
        let f = NodeFacts::parse("eth1", "nm_hook_link=1\n");
        assert_eq!(f.nm_hook.as_deref(), Some(LINK_PLACEHOLDER));
    }

    #[test]
    fn hooks_put_back_each_route_with_routectls_line() {
        let routes = [r("10.2.1.0/24", "10.0.3.21"), r("10.2.0.0/24", "10.0.3.20")];
        let nm = render_hook(Mechanism::NetworkManager, "w0", "eth1", &routes);
        assert!(
            nm.starts_with("#!/bin/sh\n# Written by routectl for node w0"),
            "{nm}"
        );
        assert!(
            nm.contains("\n[ \"$1\" = 'eth1' ] && [ \"$2\" = up ] || exit 0\n"),
            "{nm}"
        );
        assert!(
            nm.ends_with(
                "exec ip -force -batch - <<'ROUTECTL'\n\
                 route replace 10.2.0.0/24 via 10.0.3.20 dev eth1 table 254 proto 211 metric 0\n\
                 route replace 10.2.1.0/24 via 10.0.3.21 dev eth1 table 254 proto 211 metric 0\n\
                 ROUTECTL\n"
            ),
            "{nm}"
        );
        let up = render_hook(Mechanism::Ifupdown, "w0", "eth1", &routes);
        assert!(
            up.contains("[ \"$IFACE\" = 'eth1' ] && [ \"$MODE\" = start ] || exit 0"),
            "{up}"
        );
        let parsed = parse_hook(&up);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].destination, "10.2.0.0/24");
        assert_eq!(parsed[0].gateway.as_deref(), Some("10.0.3.20"));
        assert_eq!(parsed[0].protocol.as_deref(), Some("211"));
        assert_eq!(parsed[0].metric.as_deref(), Some("0"));
    }

    #[test]
    fn auto_persists_with_whatever_manages_the_interface() {
        let desired = [r("10.2.1.0/24", "10.0.3.21")];
        let nm = NodeFacts::parse(
            "eth1",
            "proc=NetworkManager\nnm_device=1\nnm_netplan=1\nifupdown=0\n",
        );
        assert_eq!(nm.manager(), Manager::NetworkManager { netplan: true });
        let p = plan(Persist::Auto, Ok(&nm), "w0", "eth1", &desired).unwrap();
        assert_eq!(
            (p.mechanism(), p.path(), p.state()),
            (
                Some(Mechanism::NetworkManager),
                Some(NM_HOOK_PATH),
                "create"
            )
        );
        assert_eq!(p.route_changes().0.len(), 1);
        assert_eq!(Mechanism::NetworkManager.mode(), 0o755);
        assert!(!Mechanism::NetworkManager.reloads());
        // The same under its own name; refused under another manager's.
        assert_eq!(
            plan(Persist::NetworkManager, Ok(&nm), "w0", "eth1", &desired).unwrap(),
            p
        );
        let why = plan(Persist::Ifupdown, Ok(&nm), "w0", "eth1", &desired).unwrap_err();
        assert!(why.contains("managed by netplan/NetworkManager"), "{why}");
        // In sync once the hook holds the routes; edited or deleted: pending again.
        let mut f = nm.clone();
        f.nm_hook = Some(render_hook(
            Mechanism::NetworkManager,
            "w0",
            "eth1",
            &desired,
        ));
        let p = plan(Persist::Auto, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "in-sync");
        f.nm_hook = Some(f.nm_hook.unwrap().replace("10.0.3.21", "10.0.3.99"));
        let p = plan(Persist::Auto, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.state(), "update");
        // Persist off: routectl's hook goes.
        let p = plan(Persist::None, Ok(&f), "w0", "eth1", &desired).unwrap();
        assert_eq!((p.state(), p.path()), ("remove", Some(NM_HOOK_PATH)));
        // ifupdown wins over a NetworkManager that leaves the interface to it.
        let up = NodeFacts::parse("eth1", "proc=NetworkManager\nnm_device=1\nifupdown=1\n");
        let p = plan(Persist::Auto, Ok(&up), "w0", "eth1", &desired).unwrap();
        assert_eq!(p.path(), Some(IFUPDOWN_HOOK_PATH));
        // Nothing manages the interface: nothing written, and a hook left over is removed.
        let mut none = NodeFacts::parse("eth1", "");
        let p = plan(Persist::Auto, Ok(&none), "w0", "eth1", &desired).unwrap();
        assert_eq!(p, PersistPlan::Off);
        none.ifupdown_hook = Some("#!/bin/sh\n".to_string());
        let p = plan(Persist::Auto, Ok(&none), "w0", "eth1", &desired).unwrap();
        assert_eq!((p.state(), p.path()), ("remove", Some(IFUPDOWN_HOOK_PATH)));
        // Not known: refused, but a plan from snapshots leaves the file alone.
        let why = plan(Persist::Auto, Err("not read"), "w0", "eth1", &desired).unwrap_err();
        assert!(why.contains("persist = \"auto\""), "{why}");
        assert_eq!(
            plan(Persist::Auto, Err(FROM_SNAPSHOT), "w0", "eth1", &desired).unwrap(),
            PersistPlan::Off
        );
    }
}
