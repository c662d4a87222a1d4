//! LXD and Incus clusters: where each instance of a topology runs, as the daemon routectl talks
//! to says, and a transport that refuses at once what would only time out.
//!
//! On a cluster every instance has a location (the member that runs it) and `lxc exec` is
//! forwarded to that member. When a member is dead, the daemon lists its instances at once with
//! status `Error`, yet an `exec` into them fails only after the cluster's own timeout (10 s, then
//! routectl's retry). [`View::fetch`] asks the daemon once per command: its own member name,
//! the members that are not online, and the topology's instances with status and location (one
//! request per project, from the daemon's database and its members). [`Located`] wraps the
//! command's transport: a node whose instance is in `Error` or whose member is not online is
//! refused with [`CommandError::MemberDown`] without running anything, so the node is unknown
//! (never absent: nothing is deleted because of it) and the other nodes go on.
//!
//! A member that hangs (frozen, not yet counted offline) makes the daemon's list wait for it (up
//! to 30 s). The list is therefore given half the per-node timeout; when it does not answer in
//! time, each instance is asked on its own, side by side, with the other half: those of the
//! healthy members answer at once, those of the hung member are unknown when the time is up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::access::{self, Accesses};
use crate::core::topology::{Access, Topology, TransportKind};
use crate::error::CommandError;
use crate::node::lxd_api::{self, Instance, Server};
use crate::node::request::{ApplyReply, ApplyRequest, ProbeRequest, ReadReply, ReadRequest};
use crate::node::transport::{HostRecord, Invocation, Output, Transport};

/// What the daemon says of a cluster and of a topology's instances.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The daemon routectl talks to (its member name).
    pub server: Server,
    /// Project -> instance -> what the daemon reports (only the topology's instances when they
    /// had to be asked one by one).
    pub projects: HashMap<String, HashMap<String, Instance>>,
    /// The topology's instance -> its project (`default` when none).
    instance_project: BTreeMap<String, String>,
    /// Members that are not online, with their status.
    pub not_online: HashMap<String, String>,
    /// Instances the daemon did not answer for in time, with why.
    pub unanswered: HashMap<String, String>,
}

impl View {
    /// Asks the daemon of `kind` (its socket: `LXD_DIR`/`INCUS_DIR`) about the topology's
    /// local instances (remotes, `REMOTE:NAME`, are not its to tell).
    pub fn fetch(kind: TransportKind, t: &Topology, timeout: Duration) -> Result<View, String> {
        let socket = lxd_api::socket_path(kind);
        let server = lxd_api::server(&socket, timeout)?;
        let mut view = View {
            server,
            ..View::default()
        };
        for n in t.nodes.iter().filter(|n| !n.instance.contains(':')) {
            let p = n.project.clone().unwrap_or_else(|| "default".into());
            view.instance_project.insert(n.instance.clone(), p);
        }
        if !view.server.clustered {
            return Ok(view);
        }
        view.not_online = lxd_api::members_not_online(&socket, timeout)?;
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, p) in &view.instance_project {
            wanted.entry(p.clone()).or_default().push(i.clone());
        }
        let half = (timeout / 2).max(Duration::from_millis(200));
        for (project, names) in wanted {
            let list = match lxd_api::instances(&socket, Some(&project), half) {
                Ok(list) => list,
                Err(_) => one_by_one(&socket, &project, &names, half, &mut view.unanswered),
            };
            view.projects.insert(project, list);
        }
        Ok(view)
    }

    /// What the daemon reports of a topology's instance.
    pub fn instance(&self, instance: &str) -> Option<&Instance> {
        let project = self.instance_project.get(instance)?;
        self.projects.get(project)?.get(instance)
    }

    /// The member that runs an instance (`None`: not on a cluster, or not listed).
    pub fn location(&self, instance: &str) -> Option<&str> {
        if !self.server.clustered {
            return None;
        }
        self.instance(instance)
            .map(|i| i.location.as_str())
            .filter(|l| !l.is_empty() && *l != "none")
    }

    /// Whether an instance runs on `member` (`local`: the member routectl talks to). Outside a
    /// cluster every local instance runs here.
    pub fn on_member(&self, instance: &str, member: &str) -> bool {
        if instance.contains(':') {
            return false;
        }
        if !self.server.clustered {
            return member == "local";
        }
        let member = if member == "local" {
            self.server.name.as_str()
        } else {
            member
        };
        self.location(instance) == Some(member)
    }

    /// Why a node must not be contacted now: its member (named, or `unknown`) and the reason.
    pub fn down(&self, instance: &str) -> Option<(String, String)> {
        if !self.server.clustered || instance.contains(':') {
            return None;
        }
        if let Some(why) = self.unanswered.get(instance) {
            return Some(("unknown".into(), why.clone()));
        }
        let i = self.instance(instance)?;
        if let Some(status) = self.not_online.get(&i.location) {
            return Some((
                i.location.clone(),
                format!("the cluster counts member `{}` as {status}", i.location),
            ));
        }
        (i.status == "Error").then(|| {
            (
                i.location.clone(),
                "the daemon lists the instance with status Error".to_string(),
            )
        })
    }
}

/// Which access each of the topology's nodes gets and where it runs: host access only for the
/// instances on the daemon's own member ([`access::decide`]). Without a view (another transport,
/// or a daemon that could not be asked) no node has a location.
pub fn accesses(t: &Topology, asked: Access, view: Option<&View>) -> Accesses {
    let here = view
        .filter(|v| v.server.clustered)
        .map(|v| v.server.name.as_str());
    t.nodes
        .iter()
        .map(|n| {
            let location = view.and_then(|v| v.location(&n.instance));
            (n.name.clone(), access::decide(asked, location, here))
        })
        .collect()
}

/// Each instance on its own, side by side (a hung member holds up only its own instances).
fn one_by_one(
    socket: &Path,
    project: &str,
    names: &[String],
    timeout: Duration,
    unanswered: &mut HashMap<String, String>,
) -> HashMap<String, Instance> {
    let socket: PathBuf = socket.to_path_buf();
    let answers: Vec<(String, Result<Instance, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let socket = &socket;
                s.spawn(move || {
                    (
                        n.clone(),
                        lxd_api::instance(socket, Some(project), n, timeout),
                    )
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut list = HashMap::new();
    for (name, answer) in answers {
        match answer {
            Ok(i) => {
                list.insert(name, i);
            }
            Err(e) => {
                unanswered.insert(
                    name,
                    format!(
                        "the daemon did not answer for the instance within {} ms ({e})",
                        timeout.as_millis()
                    ),
                );
            }
        }
    }
    list
}

/// A transport that refuses, without running anything, what would go to an instance of a
/// member that does not answer; everything else goes to the inner transport.
pub struct Located {
    inner: Box<dyn Transport>,
    view: View,
}

impl Located {
    /// Wraps `inner` with what the daemon said.
    pub fn new(inner: Box<dyn Transport>, view: View) -> Located {
        Located { inner, view }
    }

    fn refuse(&self, instance: &str, what: &str) -> Result<(), CommandError> {
        match self.view.down(instance) {
            Some((member, why)) => Err(CommandError::MemberDown {
                argv: format!("{what} on `{instance}`"),
                member,
                why,
            }),
            None => Ok(()),
        }
    }
}

impl Transport for Located {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        self.refuse(instance, &inv.program)?;
        self.inner.run(instance, inv)
    }

    fn commands_run(&self) -> usize {
        self.inner.commands_run()
    }

    fn sees_node_files(&self) -> bool {
        self.inner.sees_node_files()
    }

    fn records_on_host(&self) -> bool {
        self.inner.records_on_host()
    }

    fn host_record(&self, instance: &str, record_path: &str) -> HostRecord {
        self.inner.host_record(instance, record_path)
    }

    fn read(&self, instance: &str, req: &ReadRequest) -> Result<ReadReply, CommandError> {
        self.refuse(instance, "the read request")?;
        self.inner.read(instance, req)
    }

    fn apply(&self, instance: &str, req: &ApplyRequest) -> Result<ApplyReply, CommandError> {
        self.refuse(instance, "the apply request")?;
        self.inner.apply(instance, req)
    }

    fn probe(&self, instance: &str, req: &ProbeRequest) -> Result<Output, CommandError> {
        self.refuse(instance, "the probe")?;
        self.inner.probe(instance, req)
    }
    fn hold_reads(&self) {
        self.inner.hold_reads()
    }

    fn release_held(&self, keep: &[String]) {
        self.inner.release_held(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        let mut list = HashMap::new();
        for (name, status, loc) in [
            ("a", "Running", "m0"),
            ("b", "Error", "m2"),
            ("c", "Running", "m1"),
        ] {
            list.insert(
                name.to_string(),
                Instance {
                    kind: "container".into(),
                    status: status.into(),
                    location: loc.into(),
                },
            );
        }
        View {
            server: Server {
                clustered: true,
                name: "m0".into(),
            },
            projects: HashMap::from([("default".to_string(), list)]),
            instance_project: ["a", "b", "c", "d", "e"]
                .iter()
                .map(|i| (i.to_string(), "default".to_string()))
                .collect(),
            not_online: HashMap::from([("m1".to_string(), "Offline".to_string())]),
            unanswered: HashMap::from([("e".to_string(), "no answer".to_string())]),
        }
    }

    /// An instance in `Error`, on a member not online, or not answered for is down; a healthy
    /// one, an unlisted one and a remote are not the view's to refuse.
    #[test]
    fn down_and_members() {
        let v = view();
        assert_eq!(v.down("a"), None);
        assert_eq!(v.down("b").unwrap().0, "m2");
        assert!(v.down("c").unwrap().1.contains("Offline"));
        assert_eq!(v.down("d"), None);
        assert_eq!(v.down("e").unwrap().0, "unknown");
        assert_eq!(v.down("r:a"), None);
        assert!(v.on_member("a", "local") && v.on_member("a", "m0"));
        assert!(!v.on_member("b", "local") && v.on_member("b", "m2"));
        assert!(!v.on_member("d", "m0") && !v.on_member("r:a", "m0"));
        let lone = View {
            server: Server::default(),
            ..view()
        };
        assert_eq!(lone.down("b"), None);
        assert!(lone.on_member("b", "local") && !lone.on_member("b", "m0"));
        assert_eq!(lone.location("a"), None);
    }
}
