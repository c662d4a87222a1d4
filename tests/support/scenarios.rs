//! Scenarios that run the same way on every real lab (network namespaces, LXD), so that each
//! backend proves the same behaviour with one text of the test.

use super::Run;
use super::assert_code as code;

/// What a scenario needs from a lab of topology.example.toml's four nodes.
pub trait Lab {
    /// Runs routectl with the lab's topology.
    fn run(&self, args: &[&str]) -> Run;
    /// `ip route` lines of a node's table main, without kernel and link-local routes.
    fn table(&self, node: &str) -> Vec<String>;
    /// Runs `ip WORDS…` (split on white space) in a node.
    fn ip_words(&self, node: &str, words: &str);
    /// Pairs of workers whose pod gateways cannot reach each other.
    fn broken_paths(&self) -> Vec<String>;
}

fn has(lab: &dyn Lab, node: &str, route: &str) -> bool {
    lab.table(node).iter().any(|r| r == route)
}

/// From no routes: apply converges and pods reach pods; a second apply only reads (no batch is
/// sent; a read that printed nothing may be retried) and plan reports in sync.
pub fn apply_converges_then_changes_nothing(lab: &dyn Lab) {
    assert!(
        !lab.broken_paths().is_empty(),
        "pods reach each other before any route exists?"
    );
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
    assert_eq!(
        lab.table("worker-0"),
        [
            "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
            "10.1.2.0/24 via 10.0.2.22 dev eth1 proto 211",
        ]
    );
    assert_eq!(lab.table("controller-0").len(), 3);

    let again = lab.run(&["-v", "apply", "--auto-approve", "--output", "json"]);
    code(&again, 0);
    let j = again.json();
    assert_eq!(j["summary"]["operations_applied"], 0, "{again:?}");
    assert_eq!(j["summary"]["nodes_in_sync"], 4, "{again:?}");
    let commands: Vec<&str> = again
        .stderr
        .lines()
        .filter(|l| l.starts_with("+ "))
        .collect();
    assert!(commands.len() >= 4, "{again:?}");
    assert!(
        commands
            .iter()
            .all(|c| c.ends_with("-N -d -j route show table all")),
        "only reads: {again:?}"
    );
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
}

/// Drift: an owned route deleted by hand, an owned route re-pointed, an owned route to a CIDR
/// nobody has, a foreign route elsewhere, a foreign route identical to a desired one. apply
/// repairs exactly the owned ones, leaves the foreign ones, adopts the identical one only with
/// `--adopt`.
pub fn drift_is_repaired_only_where_owned(lab: &dyn Lab) {
    code(&lab.run(&["apply", "--auto-approve"]), 0);
    lab.ip_words("worker-0", "route del 10.1.1.0/24 proto 211");
    lab.ip_words(
        "worker-1",
        "route replace 10.1.0.0/24 via 10.0.2.22 dev eth1 proto 211",
    );
    lab.ip_words(
        "worker-2",
        "route add 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
    );
    lab.ip_words(
        "worker-2",
        "route add 192.168.77.0/24 via 10.0.2.20 dev eth1",
    );
    lab.ip_words("controller-0", "route del 10.1.0.0/24 proto 211");
    lab.ip_words(
        "controller-0",
        "route add 10.1.0.0/24 via 10.0.2.20 dev eth1",
    );

    let plan = lab.run(&["plan", "--detailed-exitcode"]);
    code(&plan, 3);
    for line in [
        "+ 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211",
        "~ 10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211",
        "- 10.1.9.0/24 via 10.0.2.20 dev eth1 proto 211",
        "taken over only with --adopt",
    ] {
        assert!(plan.stdout.contains(line), "plan lacks {line:?}: {plan:?}");
    }

    code(&lab.run(&["apply", "--auto-approve"]), 0);
    assert!(has(
        lab,
        "worker-0",
        "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211"
    ));
    assert!(has(
        lab,
        "worker-1",
        "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"
    ));
    let w2 = lab.table("worker-2");
    assert!(!w2.iter().any(|l| l.starts_with("10.1.9.0/24")), "{w2:?}");
    assert!(
        has(lab, "worker-2", "192.168.77.0/24 via 10.0.2.20 dev eth1"),
        "foreign route kept: {w2:?}"
    );
    // The identical foreign route stays as it is without --adopt …
    assert!(has(
        lab,
        "controller-0",
        "10.1.0.0/24 via 10.0.2.20 dev eth1"
    ));
    code(&lab.run(&["plan", "--detailed-exitcode"]), 0);
    // … and is taken over with it.
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 3);
    code(&lab.run(&["apply", "--auto-approve", "--adopt"]), 0);
    assert!(has(
        lab,
        "controller-0",
        "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211"
    ));
    code(&lab.run(&["plan", "--detailed-exitcode", "--adopt"]), 0);
    assert_eq!(lab.broken_paths(), Vec::<String>::new());
}

impl Lab for super::NetnsLab {
    fn run(&self, args: &[&str]) -> Run {
        self.routectl(args)
    }
    fn table(&self, node: &str) -> Vec<String> {
        self.routes(node)
    }
    fn ip_words(&self, node: &str, words: &str) {
        self.ip(node, &words.split_whitespace().collect::<Vec<_>>());
    }
    fn broken_paths(&self) -> Vec<String> {
        self.unreachable_pairs()
    }
}

impl Lab for super::lxd::LxdLab {
    fn run(&self, args: &[&str]) -> Run {
        self.routectl(args)
    }
    fn table(&self, node: &str) -> Vec<String> {
        self.routes(node)
    }
    fn ip_words(&self, node: &str, words: &str) {
        self.ip(node, &words.split_whitespace().collect::<Vec<_>>());
    }
    fn broken_paths(&self) -> Vec<String> {
        self.unreachable_pairs()
    }
}
