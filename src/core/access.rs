//! Which access each node got and where it runs, for `show` and the plan and apply documents.
//!
//! Host access serves only what runs on the machine of the daemon routectl talks to: on an LXD
//! or Incus cluster, an instance located on another member is reached through the cluster
//! (`exec`) even when host access was asked for. [`decide`] is that rule, on what the daemon
//! said (the instance's location and the daemon's own member name).

use std::collections::BTreeMap;

use super::topology::Access;

/// How routectl reads and writes one node, and where the node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAccess {
    /// The access the node's reads and writes go through.
    pub used: Access,
    /// Host access was asked for, yet the instance runs on another member of the cluster: it
    /// is reached through the cluster (`exec`).
    pub elsewhere: bool,
    /// The cluster member that runs the instance (`None` off a cluster, or not listed).
    pub location: Option<String>,
}

impl NodeAccess {
    /// `exec` or `host`.
    pub fn used_name(&self) -> &'static str {
        self.used.name()
    }

    /// A short note for text output on a cluster (`on m1, host access`); `None` off a cluster
    /// (the access asked for is the one every node got).
    pub fn note(&self) -> Option<String> {
        let how = match (self.used, self.elsewhere) {
            (_, true) => "exec: not on this member",
            (Access::Host, false) => "host access",
            (Access::Exec, false) => "exec",
        };
        self.location.as_ref().map(|l| format!("on {l}, {how}"))
    }
}

/// Node name -> its access, for the nodes a command reached (empty for a plan from a snapshot).
pub type Accesses = BTreeMap<String, NodeAccess>;

/// The access a node gets: `asked` (the topology's or `--access`), except that host access to an
/// instance located on another member than `here` (the daemon's own member name, `None` off a
/// cluster) goes through the cluster.
pub fn decide(asked: Access, location: Option<&str>, here: Option<&str>) -> NodeAccess {
    let elsewhere =
        asked == Access::Host && matches!((location, here), (Some(l), Some(h)) if l != h);
    NodeAccess {
        used: if elsewhere { Access::Exec } else { asked },
        elsewhere,
        location: location.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_access_only_on_this_member() {
        let a = decide(Access::Host, Some("m1"), Some("m0"));
        assert_eq!((a.used, a.elsewhere), (Access::Exec, true));
        assert_eq!(a.note().unwrap(), "on m1, exec: not on this member");
        let a = decide(Access::Host, Some("m0"), Some("m0"));
        assert_eq!((a.used, a.elsewhere), (Access::Host, false));
        assert_eq!(a.note().unwrap(), "on m0, host access");
        let a = decide(Access::Exec, Some("m1"), Some("m0"));
        assert_eq!((a.used, a.elsewhere), (Access::Exec, false));
        assert_eq!(a.note().unwrap(), "on m1, exec");
        // Off a cluster: no location, nothing to say for exec.
        let a = decide(Access::Host, None, None);
        assert_eq!(
            (a.used, a.elsewhere, a.location.clone()),
            (Access::Host, false, None)
        );
        assert_eq!(a.note(), None);
        assert_eq!(decide(Access::Exec, None, None).note(), None);
    }
}
