//! Which namespace is a node's: `/run/netns/NAME` for a network namespace; for an LXD or Incus
//! container the init PID its daemon reports (in its project, on this cluster member), checked
//! to live in the instance's own payload cgroup and held through a pidfd, then its
//! `/proc/PID/ns/net`. What was resolved is remembered and checked at every use.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use super::Host;
use crate::core::topology::TransportKind;
use crate::error::CommandError;
use crate::node::lxd_api::{self, Instance, Server};
use crate::node::netlink;

/// Where a node's network namespace is, once resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The namespace file (`/run/netns/NAME` or `/proc/PID/ns/net`).
    pub path: PathBuf,
    /// Its inode when resolved: the namespace's identity.
    pub inode: u64,
    /// A container's init, held (`None` for a network namespace): while it is alive, its PID
    /// names the same process.
    pub pidfd: Option<Arc<OwnedFd>>,
}

impl Resolved {
    /// Whether the process it was resolved through still runs (always, for a namespace file).
    pub fn alive(&self) -> bool {
        self.pidfd.as_deref().is_none_or(alive)
    }
}

/// Whether the process behind a pidfd still runs (a pidfd becomes readable when it exits).
fn alive(pidfd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => true,
        Ok(_) => !fds[0]
            .revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
        Err(_) => false,
    }
}

/// A small file of the host's `/proc`, at most 64 KiB.
fn read_proc(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    File::open(path)?.take(64 << 10).read_to_string(&mut text)?;
    Ok(text)
}

/// Where an LXD/Incus instance runs, as its daemon says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// On this machine: its init's PID.
    Here(i64),
    /// On another member of the cluster (named).
    Elsewhere(String),
}

impl Host {
    /// The node's namespace file, checked against what it was when first resolved.
    pub fn namespace(&self, instance: &str) -> Result<(File, Resolved), CommandError> {
        let err = |m: String| self.error(instance, "finding its network namespace", m);
        if instance.contains(':') {
            return Err(err(
                "it names a remote; host access reaches only this host's instances \
                 (use access = \"exec\" for remotes)"
                    .into(),
            ));
        }
        let host_inode = netlink::own_ns_inode()
            .map_err(|e| err(format!("cannot read /proc/self/ns/net: {e}")))?;
        let known = self.lock_resolved().get(instance).cloned();
        if let Some(r) = known {
            let opened = File::open(&r.path).and_then(|f| netlink::ns_inode(&f).map(|i| (f, i)));
            return match opened {
                Ok((f, inode)) if inode == r.inode && r.alive() => Ok((f, r)),
                other => {
                    self.forget(instance);
                    let now = match other {
                        Ok((_, i)) if i == r.inode => "its init has exited".to_string(),
                        Ok((_, i)) => format!("now has inode {i}"),
                        Err(e) => format!("is gone ({e})"),
                    };
                    Err(err(format!(
                        "its namespace changed since it was resolved (a restart?): {} had \
                         inode {} and {now}; nothing was done, it is resolved again next time",
                        r.path.display(),
                        r.inode
                    )))
                }
            };
        }
        let (f, r) = match self.kind {
            TransportKind::Ssh => {
                return Err(err(
                    "it is reached over ssh; host access reaches only this host's containers \
                     and network namespaces (use access = \"exec\")"
                        .into(),
                ));
            }
            TransportKind::Netns => {
                let path = PathBuf::from("/run/netns").join(instance);
                let f = File::open(&path)
                    .map_err(|e| err(format!("cannot open {}: {e}", path.display())))?;
                let inode = netlink::ns_inode(&f).map_err(|e| err(e.to_string()))?;
                let r = Resolved {
                    path,
                    inode,
                    pidfd: None,
                };
                (f, r)
            }
            TransportKind::Lxc | TransportKind::Incus => match self.place(instance).map_err(err)? {
                Place::Here(pid) => self
                    .container_init(instance, pid)
                    .map_err(|why| err(self.explained(instance, why)))?,
                Place::Elsewhere(member) => {
                    return Err(err(format!(
                        "it runs on cluster member `{member}`, not on this one: its PID is a \
                         process of another machine; it is reached through the cluster"
                    )));
                }
            },
        };
        if r.inode == host_inode {
            return Err(err(format!(
                "{} is routectl's own network namespace, not a node's; refusing to read or \
                 write the host's routes",
                r.path.display()
            )));
        }
        self.lock_resolved().insert(instance.to_string(), r.clone());
        Ok((f, r))
    }

    /// Opens the network namespace of a container's init at `pid` (the PID its daemon
    /// reports), checked to be that container's: held through a pidfd from before the checks to
    /// after the namespace is open, and living in the instance's own payload cgroup.
    pub(super) fn container_init(
        &self,
        instance: &str,
        pid: i64,
    ) -> Result<(File, Resolved), String> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| format!("the daemon reports PID {pid}, which is no process number"))?;
        let pidfd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
            .map_err(|e| format!("the init PID {pid} the daemon reports is gone ({e})"))?;
        let cgroup = read_proc(&format!("/proc/{pid}/cgroup"))
            .map_err(|e| format!("cannot read the cgroup of PID {pid}: {e}"))?;
        let project = self.projects.get(instance).map(String::as_str);
        let payload = lxd_api::payload_cgroup(project, instance);
        if !lxd_api::in_payload_cgroup(&cgroup, &payload) {
            return Err(format!(
                "PID {pid}, which the daemon reports as its init, is not in its container's \
                 cgroup {payload} (it is in {}): refusing to use it",
                cgroup.lines().find(|l| l.starts_with("0::")).unwrap_or("?")
            ));
        }
        // A container's init has a PID namespace of its own; a hypervisor (the PID the daemon
        // reports for a virtual machine) shares the host's.
        let pid_ns =
            |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        match (
            pid_ns(&format!("/proc/{pid}/ns/pid")),
            pid_ns("/proc/self/ns/pid"),
        ) {
            (Ok(theirs), Ok(ours)) if theirs != ours => {}
            (Ok(_), Ok(_)) => {
                return Err(format!(
                    "PID {pid}, which the daemon reports as its init, shares routectl's PID \
                     namespace: it is no container's init"
                ));
            }
            (Err(e), _) | (_, Err(e)) => {
                return Err(format!("cannot read the PID namespace of PID {pid}: {e}"));
            }
        }
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let f = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let inode = netlink::ns_inode(&f).map_err(|e| e.to_string())?;
        if !alive(&pidfd) {
            return Err(format!(
                "its init (PID {pid}) exited while its namespace was opened (a restart?)"
            ));
        }
        let r = Resolved {
            path,
            inode,
            pidfd: Some(Arc::new(pidfd)),
        };
        Ok((f, r))
    }

    pub(super) fn lock_resolved(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what is known of an instance (and the instance list), so the next use resolves it
    /// again.
    pub fn forget(&self, instance: &str) {
        self.lock_resolved().remove(instance);
        self.instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(super) fn daemon(&self) -> &'static str {
        if self.kind == TransportKind::Incus {
            "Incus"
        } else {
            "LXD"
        }
    }

    /// The daemon behind the socket (asked once).
    pub(super) fn server(&self) -> Result<Server, String> {
        let mut known = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = known.as_ref() {
            return Ok(s.clone());
        }
        let s = lxd_api::server(&lxd_api::socket_path(self.kind), self.timeout)?;
        *known = Some(s.clone());
        Ok(s)
    }

    /// The daemon's record of an instance (its project's list is asked once).
    pub(super) fn instance(&self, instance: &str) -> Result<Instance, String> {
        let project = self
            .projects
            .get(instance)
            .map_or("default", String::as_str);
        let mut cache = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.contains_key(project) {
            let socket = lxd_api::socket_path(self.kind);
            let list = lxd_api::instances(&socket, Some(project), self.timeout)?;
            cache.insert(project.to_string(), list);
        }
        cache
            .get(project)
            .and_then(|m| m.get(instance))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "{} lists no instance `{instance}` in project `{project}`",
                    self.daemon()
                )
            })
    }

    /// Whether an instance runs on another member of a cluster (reached through `exec`): from
    /// the daemon's list alone, without asking for its state; outside a cluster, without asking
    /// anything (there [`Host::place`] asks only for the state).
    pub(super) fn elsewhere(&self, instance: &str) -> bool {
        matches!(self.kind, TransportKind::Lxc | TransportKind::Incus)
            && !instance.contains(':')
            && self.server().is_ok_and(|s| s.clustered)
            && matches!(self.located(instance), Ok((_, Some(_))))
    }

    /// An instance from the daemon's list, checked to be a container, with the member that runs
    /// it when that is not this one.
    fn located(&self, instance: &str) -> Result<(Instance, Option<String>), String> {
        let i = self.instance(instance)?;
        if i.kind != "container" {
            return Err(format!(
                "it is a {}, not a container: its PID would be the hypervisor's, in the host's \
                 namespace; use access = \"exec\"",
                i.kind
            ));
        }
        let server = self.server()?;
        let member = (!server.hosts(&i.location)).then(|| i.location.clone());
        Ok((i, member))
    }

    /// Where a container runs and, on this machine, its init PID as the daemon reports it.
    ///
    /// Outside a cluster every instance runs here, so only its state is asked (`/state`, the
    /// only answer that carries the PID, 5-15 ms of the daemon's time); the PID is then checked
    /// by `Host::container_init` (its payload cgroup, a PID namespace of its own), and the
    /// project's list is asked only to say why an instance has no usable PID (missing, stopped,
    /// a virtual machine). On a cluster the list comes first (the state of an instance on
    /// another member would be asked of that member, for a PID of another machine).
    pub fn place(&self, instance: &str) -> Result<Place, String> {
        let project = self.projects.get(instance).map(String::as_str);
        let socket = lxd_api::socket_path(self.kind);
        let ask = || lxd_api::init_pid(&socket, project, instance, self.timeout);
        let server = self.server()?;
        let no_init = || {
            format!(
                "{} reports no init process for it (not running)",
                self.daemon()
            )
        };
        if !server.clustered {
            return match ask() {
                Ok(pid) if pid > 0 => Ok(Place::Here(pid)),
                Ok(_) => Err(self.explained(instance, no_init())),
                // A daemon that did not answer is not asked again (one timeout, not two).
                Err(why) if !lxd_api::answered(&why) => Err(why),
                Err(why) => Err(self.explained(instance, why)),
            };
        }
        let (i, member) = self.located(instance)?;
        if let Some(member) = member {
            return Ok(Place::Elsewhere(member));
        }
        if i.status != "Running" {
            return Err(format!("the instance is {} (not running)", i.status));
        }
        let pid = ask()?;
        if pid <= 0 {
            return Err(no_init());
        }
        Ok(Place::Here(pid))
    }

    /// Why an instance has no usable init, as the daemon's list tells it (missing, not a
    /// container, not running); `why` when the list has nothing more to say.
    fn explained(&self, instance: &str, why: String) -> String {
        match self.located(instance) {
            Err(e) => e,
            Ok((i, _)) if i.status != "Running" => {
                format!("the instance is {} (not running)", i.status)
            }
            Ok(_) => why,
        }
    }
}
