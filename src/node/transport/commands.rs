//! The command lines of the requests that are no script: a probe's `ping`, a watch's monitors
//! and the `ip -V` that tells why a read failed, rendered here and nowhere else, for every exec transport (the transport wraps them
//! as it wraps any command: `lxc exec`, `ssh`, `ip -n`).

use super::Invocation;
use crate::core::topology::TransportKind;
use crate::node::request::ProbeRequest;

/// `ping -c1 -W1 -I FROM TO`, run inside the source node: one echo request, one second to
/// answer, sent from the given address.
pub fn probe_invocation(p: &ProbeRequest) -> Invocation {
    Invocation {
        program: "ping".to_string(),
        args: vec![
            "-c1".to_string(),
            "-W1".to_string(),
            "-I".to_string(),
            p.from.to_string(),
            p.to.to_string(),
        ],
        ..Invocation::default()
    }
}

/// `ip -j monitor route address` inside the node: its route and address changes, one JSON
/// object a line.
pub fn changes_invocation() -> Invocation {
    Invocation::ip(
        ["-j", "monitor", "route", "address"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

/// `lxc monitor --type=lifecycle --format=json --all-projects` (`incus monitor` for Incus), on
/// this host: every project's instance lifecycle events, each with its project.
pub fn lifecycle_argv(kind: TransportKind) -> Vec<String> {
    [
        kind.name(),
        "monitor",
        "--type=lifecycle",
        "--format=json",
        "--all-projects",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `ip -V` inside the node: the iproute2 version, asked when a read failed in a way an old
/// `ip` explains.
pub fn ip_version_invocation() -> Invocation {
    Invocation::ip(vec!["-V".to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_pings_once_from_its_source() {
        let p = ProbeRequest {
            from: "10.1.0.1".parse().unwrap(),
            to: "10.1.1.1".parse().unwrap(),
        };
        let inv = probe_invocation(&p);
        assert_eq!(
            (inv.program.as_str(), inv.args.join(" ")),
            ("ping", "-c1 -W1 -I 10.1.0.1 10.1.1.1".to_string())
        );
        assert_eq!(
            lifecycle_argv(TransportKind::Incus).join(" "),
            "incus monitor --type=lifecycle --format=json --all-projects"
        );
    }
}
