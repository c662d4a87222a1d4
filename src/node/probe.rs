//! `check`'s side effects: pinging a path inside the source node through the transport. The
//! probes, the verdicts and the hints are pure and live in [`crate::core::check`].

use std::net::IpAddr;

use crate::core::canary;
use crate::core::check::{Outcome, PING_ATTEMPTS, Probe, Report, compute};
use crate::core::topology::{Node, Topology};
use crate::error::CommandError;
use crate::node::observe;
use crate::node::request::ProbeRequest;
use crate::node::transport::Transport;
use crate::parallel;

/// Pings a path through a transport, trying again once when the first ping gets no reply.
pub fn ping(t: &dyn Transport, node: &Node, p: &Probe) -> Outcome {
    ping_between(t, node, p.source, p.destination)
}

/// Pings `destination` from `source` inside `node`, trying again once without a reply.
pub fn ping_between(
    t: &dyn Transport,
    node: &Node,
    source: IpAddr,
    destination: IpAddr,
) -> Outcome {
    let req = ProbeRequest {
        from: source,
        to: destination,
    };
    let mut detail = String::new();
    for attempt in 1..=PING_ATTEMPTS {
        match t.probe(&node.instance, &req) {
            Ok(out) if out.status == Some(0) => return Outcome::Pass { attempts: attempt },
            Ok(out) => detail = ping_failure(&out.stdout, Some(out.status_error())),
            Err(e) => detail = e.to_string(),
        }
    }
    Outcome::Fail {
        attempts: PING_ATTEMPTS,
        detail,
    }
}

/// What a failed ping said: its error on stderr, else its packet-loss line, else the status.
fn ping_failure(stdout: &[u8], err: Option<CommandError>) -> String {
    if let Some(CommandError::Status { stderr, .. }) = &err
        && let Some(line) = stderr.lines().rev().find(|l| !l.trim().is_empty())
    {
        return line.trim().to_string();
    }
    let stdout = String::from_utf8_lossy(stdout);
    if let Some(line) = stdout.lines().find(|l| l.contains("packet loss")) {
        return line.trim().to_string();
    }
    err.map(|e| e.to_string())
        .unwrap_or_else(|| "no reply".to_string())
}

/// Pings every path of a canary rollout (see [`crate::core::canary`]), `parallelism` at a time.
pub fn prove_canaries(
    topology: &Topology,
    canaries: &[String],
    parallelism: usize,
    transport: &dyn Transport,
) -> Vec<canary::Proof> {
    let paths = canary::paths(topology, canaries);
    parallel::map(&paths, parallelism, |p| {
        let outcome = match topology.node(&p.from) {
            Some(node) => ping_between(transport, node, p.source, p.destination),
            None => Outcome::NotRun {
                reason: format!("node `{}` is not in the topology", p.from),
            },
        };
        canary::Proof {
            path: p.clone(),
            outcome,
        }
    })
}

/// Runs a check against real nodes through a transport.
pub fn run(
    topology: &Topology,
    only: &[String],
    parallelism: usize,
    transport: &dyn Transport,
) -> Report {
    compute(
        topology,
        only,
        parallelism,
        |n| observe::read_show(transport, n),
        |n, p| ping(transport, n, p),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::check::probes;
    use crate::node::transport::{Invocation, Output};

    use crate::core::topology::fixtures::dual_stack as lab;

    #[test]
    fn a_probe_pings_from_its_source_gateway() {
        use std::sync::Mutex;
        struct Seen(Mutex<Vec<ProbeRequest>>);
        impl Transport for Seen {
            fn run(&self, _: &str, _: &Invocation) -> Result<Output, CommandError> {
                unreachable!("a probe is a typed request")
            }
            fn probe(&self, i: &str, req: &ProbeRequest) -> Result<Output, CommandError> {
                self.0.lock().unwrap().push(*req);
                Ok(Output {
                    argv: i.into(),
                    status: Some(0),
                    stdout: Vec::new(),
                    stderr: String::new(),
                })
            }
        }
        let t = lab();
        let all = probes(&t, &[]);
        let seen = Seen(Mutex::new(Vec::new()));
        ping(&seen, t.node("worker-0").unwrap(), &all[0]);
        assert_eq!(
            seen.0.lock().unwrap()[..],
            [ProbeRequest {
                from: "10.1.0.1".parse().unwrap(),
                to: "10.1.1.1".parse().unwrap()
            }]
        );
    }

    /// A transport whose every ping answers from a script of exit statuses.
    struct Scripted(std::sync::Mutex<Vec<i32>>);

    impl Transport for Scripted {
        fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
            let status = self.0.lock().unwrap().remove(0);
            Ok(Output {
                argv: format!("{instance} {} {}", inv.program, inv.args.join(" ")),
                status: Some(status),
                stdout: b"1 packets transmitted, 0 received, 100% packet loss, time 0ms\n".to_vec(),
                stderr: String::new(),
            })
        }
    }

    #[test]
    fn a_lost_first_ping_is_retried_once() {
        let t = lab();
        let p = &probes(&t, &[])[0];
        let n = t.node("worker-0").unwrap();
        assert_eq!(
            ping(&Scripted(vec![1, 0].into()), n, p),
            Outcome::Pass { attempts: 2 }
        );
        assert_eq!(
            ping(&Scripted(vec![1, 1, 0].into()), n, p),
            Outcome::Fail {
                attempts: 2,
                detail: "1 packets transmitted, 0 received, 100% packet loss, time 0ms".into()
            }
        );
    }
}
