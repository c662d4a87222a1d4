//! The topology's checker: TOML text -> a validated [`Topology`], every problem with its file,
//! line and column, all reported at once. The rules for single names and values live in
//! [`super::names`]; the checks across nodes in [`super::across`], on values, so that
//! `routectl discover` holds what it builds to exactly the same rules.

use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::across::{Key, cross_check, node_rules};
use super::names::{check_interface, check_project, parse_addr, parse_cidr};
use super::raw::{OneOrMany, RawFile, RawNode, items};
use super::suggest::with_suggestion;
use super::{Cluster, MAX_FILE_BYTES, Node, Persist, Topology, TransportKind};
use crate::core::route::Family;
use crate::error::{Problem, Problems};

mod cluster;

/// Validates topology bytes read from `source` (a file name, used in messages).
pub fn parse(
    bytes: &[u8],
    source: &str,
    transport: Option<TransportKind>,
) -> Result<Topology, Problems> {
    let mut checker = Checker {
        source: source.to_string(),
        text: String::new(),
        problems: Vec::new(),
        newlines: None,
    };
    if bytes.len() > MAX_FILE_BYTES {
        checker.problem_at(
            0,
            format!(
                "file is {} bytes; a topology may be at most {MAX_FILE_BYTES} bytes",
                bytes.len()
            ),
        );
        return Err(Problems(checker.problems));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(e) => {
            checker.text = String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned();
            let at = e.valid_up_to();
            checker.problem_at(at, "the file is not valid UTF-8 text".to_string());
            return Err(Problems(checker.problems));
        }
    };
    checker.text = text.clone();
    let raw: RawFile = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            checker.problem_at(at, with_suggestion(e.message().trim()));
            return Err(Problems(checker.problems));
        }
    };
    let topology = checker.check(raw, transport);
    match topology {
        Some(nodes_cluster) if checker.problems.is_empty() => {
            let (cluster, nodes) = nodes_cluster;
            let sha256 = crate::core::hex(&Sha256::digest(bytes));
            Ok(Topology {
                source: source.to_string(),
                text,
                sha256,
                cluster,
                nodes,
            })
        }
        _ => {
            checker.problems.sort_by_key(|p| (p.line, p.column));
            Err(Problems(checker.problems))
        }
    }
}

struct Checker {
    source: String,
    text: String,
    problems: Vec<Problem>,
    /// Byte offsets of the text's newlines, built on first use (a line per node, in O(log n)).
    newlines: Option<Vec<usize>>,
}

impl Checker {
    /// The 1-based line of a byte offset; the same as `line_col(&self.text, offset).0`.
    fn line_at(&mut self, offset: usize) -> usize {
        let text = &self.text;
        let newlines = self
            .newlines
            .get_or_insert_with(|| text.match_indices('\n').map(|(i, _)| i).collect());
        let mut start = offset.min(text.len());
        while start > 0 && !text.is_char_boundary(start) {
            start -= 1;
        }
        newlines.partition_point(|&nl| nl < start) + 1
    }

    fn problem_at(&mut self, offset: usize, message: String) {
        let (line, column) = line_col(&self.text, offset);
        // Messages quote what the file says: a value of a megabyte is echoed capped, and a
        // control character (a newline in a name) must not start a line of its own that reads
        // like another problem.
        let message = crate::core::text::shown_message(&message);
        self.problems.push(Problem {
            file: self.source.clone(),
            line,
            column,
            message,
        });
    }

    fn problem(&mut self, span: &Range<usize>, message: String) {
        self.problem_at(span.start, message);
    }

    fn check(
        &mut self,
        raw: RawFile,
        transport_override: Option<TransportKind>,
    ) -> Option<(Cluster, Vec<Node>)> {
        let rc = raw.cluster.unwrap_or_default();
        // The file's transport is checked even when the command line overrides it.
        let transport = self.transport(&rc);
        let transport = transport_override.unwrap_or(transport);
        let access = self.access(&rc, transport);
        let ssh_config = self.ssh_config(&rc, transport);
        let cluster_project = rc
            .project
            .as_ref()
            .and_then(|p| self.project(p, transport, "[cluster]"));
        let cluster_interface = rc.interface.as_ref().and_then(|i| {
            let ok = check_interface(i.get_ref());
            if let Err(why) = &ok {
                self.problem(
                    &i.span(),
                    format!("cluster interface `{}` {why}", i.get_ref()),
                );
            }
            ok.ok().map(|_| i.get_ref().clone())
        });
        let mut cluster_cidrs = Vec::new();
        if let Some(v) = &rc.pod_cidr {
            cluster_cidrs = self.cidrs(v, "cluster pod_cidr");
        }
        let protocol = self.protocol(&rc);
        let metric = self.metric(&rc);
        let persist = self.persist(rc.persist.as_ref(), "cluster persist");

        if raw.nodes.is_empty() {
            self.problem_at(
                0,
                "no nodes declared: add at least one [[nodes]] table".to_string(),
            );
        }
        let mut nodes = Vec::new();
        for rn in &raw.nodes {
            // A node with a bad field still takes part in the checks across nodes (with what
            // could be read of it), so that every problem is reported at once.
            let mut node = self.node(
                rn,
                transport,
                cluster_interface.as_deref(),
                cluster_project.as_deref(),
            );
            node.persist = self.node_persist(rn, &node.name, persist);
            if node.persist != Persist::None && node.interface.is_none() {
                self.persist_without_interface(rn, &node);
            }
            nodes.push((node, rn));
        }

        self.cross_checks(&nodes, &cluster_cidrs, transport);

        let cluster = Cluster {
            transport,
            access,
            pod_cidrs: cluster_cidrs,
            protocol,
            metric,
            ssh_config,
            persist,
        };
        Some((cluster, nodes.into_iter().map(|(n, _)| n).collect()))
    }

    /// A node's `persist`, or the cluster's.
    fn node_persist(&mut self, rn: &Spanned<RawNode>, name: &str, cluster: Persist) -> Persist {
        match &rn.get_ref().persist {
            Some(p) => self.persist(Some(p), &format!("node `{name}`: persist")),
            None => cluster,
        }
    }

    /// Only an ssh node may leave its interface out; what persists the routes belongs to the
    /// interface's manager, so it must be named.
    fn persist_without_interface(&mut self, rn: &Spanned<RawNode>, node: &Node) {
        let span = match &rn.get_ref().persist {
            Some(p) => p.span(),
            None => rn.get_ref().name.span(),
        };
        self.problem(
            &span,
            format!(
                "node `{}`: persist = \"{}\" needs the route interface: set \
                 `interface` (on the node or in [cluster])",
                node.name,
                node.persist.name()
            ),
        );
    }

    /// A `project` (LXD/Incus only).
    fn project(
        &mut self,
        p: &Spanned<String>,
        transport: TransportKind,
        what: &str,
    ) -> Option<String> {
        if !transport.is_lxd_like() {
            self.problem(
                &p.span(),
                format!("{what}: project is for transports `lxc` and `incus`, not `{transport}`"),
            );
            return None;
        }
        match check_project(p.get_ref()) {
            Ok(()) => Some(p.get_ref().clone()),
            Err(why) => {
                self.problem(
                    &p.span(),
                    format!("{what}: project `{}` {why}", p.get_ref()),
                );
                None
            }
        }
    }

    /// A `persist` value (`none` when absent or wrong, with a problem for a wrong one).
    fn persist(&mut self, v: Option<&Spanned<String>>, what: &str) -> Persist {
        let Some(v) = v else {
            return Persist::None;
        };
        match Persist::from_name(v.get_ref()) {
            Some(p) => p,
            None => {
                self.problem(
                    &v.span(),
                    format!(
                        "{what} `{}` is not known: expected one of {}",
                        v.get_ref(),
                        Persist::NAMES.join(", ")
                    ),
                );
                Persist::None
            }
        }
    }

    /// Parses a one-or-many list of CIDRs (at most one per family).
    fn cidrs(&mut self, v: &Spanned<OneOrMany>, what: &str) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = Vec::new();
        for (s, span) in items(v) {
            let net = match parse_cidr(&s) {
                Ok(n) => n,
                Err(why) => {
                    self.problem(&span, format!("{what} `{s}` {why}"));
                    continue;
                }
            };
            if out
                .iter()
                .any(|o| Family::of_net(o) == Family::of_net(&net))
            {
                self.problem(
                    &span,
                    format!(
                        "{what} lists more than one {} prefix (at most one per family)",
                        Family::of_net(&net)
                    ),
                );
                continue;
            }
            out.push(net);
        }
        if out.is_empty() && matches!(v.get_ref(), OneOrMany::Many(m) if m.is_empty()) {
            self.problem(&v.span(), format!("{what} is an empty array"));
        }
        out.sort_by_key(Family::of_net);
        out
    }

    fn node(
        &mut self,
        rn: &Spanned<RawNode>,
        transport: TransportKind,
        cluster_interface: Option<&str>,
        cluster_project: Option<&str>,
    ) -> Node {
        let n = rn.get_ref();
        let line = self.line_at(rn.span().start);
        let name = n.name.get_ref().clone();
        let ssh = transport == TransportKind::Ssh;
        let project = match &n.project {
            Some(p) => self.project(p, transport, &format!("node `{name}`")),
            None => cluster_project.map(str::to_string),
        };
        self.reach_keys(n, &name, transport);
        // For ssh, what the transport addresses is the `address` (the internal IP by default,
        // filled in below).
        let instance = if ssh {
            n.address.as_ref().map(|a| a.get_ref().clone())
        } else {
            n.instance.as_ref().map(|i| i.get_ref().clone())
        };
        let interface = self.node_interface(rn, &name, cluster_interface, ssh);
        // What cannot be read as an address or prefix is reported here, at the item; the rules
        // for the values read are [`node_rules`], shared with nodes built in code.
        let ips_before = self.problems.len();
        let internal_ips = self.internal_ips(n, &name);
        let ips_ok = self.problems.len() == ips_before;
        let pod_cidrs = match &n.pod_cidr {
            Some(v) => self.cidrs(v, &format!("node `{name}`: pod_cidr")),
            None => Vec::new(),
        };

        let default_instance = if ssh {
            internal_ips
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        } else {
            name.clone()
        };
        let node = Node {
            instance: instance.clone().unwrap_or(default_instance),
            name,
            project,
            interface,
            internal_ips,
            pod_cidrs,
            line,
            persist: Persist::None,
        };
        self.node_rule_problems(rn, &node, instance.is_some(), transport, ips_ok);
        node
    }

    /// `address` is for ssh, `instance` for every other transport.
    fn reach_keys(&mut self, n: &RawNode, name: &str, transport: TransportKind) {
        let ssh = transport == TransportKind::Ssh;
        if let Some(a) = &n.address
            && !ssh
        {
            self.problem(
                &a.span(),
                format!(
                    "node `{name}`: address is for transport `ssh`, not `{transport}` (use \
                     `instance`)"
                ),
            );
        }
        if let Some(i) = &n.instance
            && ssh
        {
            self.problem(
                &i.span(),
                format!(
                    "node `{name}`: transport `ssh` reaches a node at its `address` (host or \
                     user@host), not an `instance`"
                ),
            );
        }
    }

    /// A node's interface: its own, or the cluster's; required but for ssh.
    fn node_interface(
        &mut self,
        rn: &Spanned<RawNode>,
        name: &str,
        cluster_interface: Option<&str>,
        ssh: bool,
    ) -> Option<String> {
        match (&rn.get_ref().interface, cluster_interface) {
            (Some(i), _) => Some(i.get_ref().clone()),
            (None, Some(i)) => Some(i.to_string()),
            // A machine reached over ssh need not name its device: routes then carry none and
            // the kernel picks it from the gateway, as the upstream tutorial's do.
            (None, None) if ssh => None,
            (None, None) => {
                self.problem(
                    &rn.span(),
                    format!(
                        "node `{name}` has no interface: set `interface` in [cluster] or on this \
                         node"
                    ),
                );
                None
            }
        }
    }

    /// A node's internal IPs that can be read, at most one per family, in family order.
    fn internal_ips(&mut self, n: &RawNode, name: &str) -> Vec<IpAddr> {
        let mut internal_ips: Vec<IpAddr> = Vec::new();
        for (s, span) in items(&n.internal_ip) {
            match parse_addr(&s) {
                Ok(a) => {
                    if internal_ips
                        .iter()
                        .any(|o| Family::of_addr(o) == Family::of_addr(&a))
                    {
                        self.problem(
                            &span,
                            format!(
                                "node `{name}`: internal_ip lists more than one {} address (at \
                                 most one per family)",
                                Family::of_addr(&a)
                            ),
                        );
                    } else {
                        internal_ips.push(a);
                    }
                }
                Err(why) => {
                    self.problem(&span, format!("node `{name}`: internal_ip `{s}` {why}"));
                }
            }
        }
        internal_ips.sort_by_key(Family::of_addr);
        internal_ips
    }

    /// The rules of [`node_rules`] for a node read from the file, each at its key.
    fn node_rule_problems(
        &mut self,
        rn: &Spanned<RawNode>,
        node: &Node,
        instance_given: bool,
        transport: TransportKind,
        ips_ok: bool,
    ) {
        let n = rn.get_ref();
        let ssh = transport == TransportKind::Ssh;
        let key_span = if ssh { &n.address } else { &n.instance };
        for (key, message) in node_rules(node, instance_given, transport) {
            let span = match key {
                Key::Name => n.name.span(),
                // An ssh node's default address (its internal IP) is checked as the IP.
                Key::Instance if ssh && key_span.is_none() => continue,
                Key::Instance => key_span.as_ref().map_or(n.name.span(), |i| i.span()),
                // A project was checked where it was read.
                Key::Project => continue,
                // A cluster-wide interface was checked once, in [cluster].
                Key::Interface => match &n.interface {
                    Some(i) => i.span(),
                    None => continue,
                },
                // An address that could not be read must not also count as missing.
                Key::InternalIp | Key::PodCidr if !ips_ok => continue,
                Key::InternalIp => n.internal_ip.span(),
                Key::PodCidr => pod_cidr_span(rn),
            };
            self.problem(&span, message);
        }
    }

    fn cross_checks(
        &mut self,
        nodes: &[(Node, &Spanned<RawNode>)],
        cluster_cidrs: &[IpNet],
        transport: TransportKind,
    ) {
        let values: Vec<&Node> = nodes.iter().map(|(n, _)| n).collect();
        for p in cross_check(&values, cluster_cidrs, transport) {
            let Some((_, raw)) = nodes.get(p.node) else {
                continue;
            };
            let r = raw.get_ref();
            let span = match p.key {
                Key::Name => r.name.span(),
                Key::Instance => r
                    .instance
                    .as_ref()
                    .or(r.address.as_ref())
                    .map(|i| i.span())
                    .unwrap_or(r.name.span()),
                Key::Interface => r.interface.as_ref().map_or(raw.span(), |i| i.span()),
                Key::Project => r.project.as_ref().map_or(raw.span(), |i| i.span()),
                Key::InternalIp => r.internal_ip.span(),
                Key::PodCidr => pod_cidr_span(raw),
            };
            self.problem(&span, p.message);
        }
    }
}

/// Where a node's pod_cidr is written (the node's table when it has none).
fn pod_cidr_span(raw: &Spanned<RawNode>) -> Range<usize> {
    raw.get_ref()
        .pod_cidr
        .as_ref()
        .map(|v| v.span())
        .unwrap_or(raw.span())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let last_line = before.rsplit('\n').next().unwrap_or(before);
    let column = last_line.chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::route::DEFAULT_PROTOCOL;
    use crate::core::topology::Access;

    fn ok(text: &str) -> Topology {
        parse(text.as_bytes(), "t.toml", None).unwrap_or_else(|p| panic!("{p}"))
    }

    fn errs(text: &str) -> String {
        parse(text.as_bytes(), "t.toml", None)
            .unwrap_err()
            .to_string()
    }

    const LAB: &str = r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"

[[nodes]]
name = "controller-0"
internal_ip = "10.0.2.10"

[[nodes]]
name = "worker-0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
"#;

    #[test]
    fn host_access_is_refused_for_ssh_nodes() {
        let ssh = "[cluster]\ntransport = \"ssh\"\naccess = \"host\"\ninterface = \"eth1\"\n\n[[nodes]]\nname = \"n0\"\naddress = \"10.0.4.10\"\ninternal_ip = \"10.0.4.10\"\n";
        assert!(
            errs(ssh).contains("t.toml:3:10: access `host` reaches only this host's containers"),
            "{}",
            errs(ssh)
        );
    }

    #[test]
    fn access_defaults_to_exec_and_is_checked() {
        assert_eq!(ok(LAB).cluster.access, Access::Exec);
        let host = LAB.replace("[cluster]\n", "[cluster]\naccess = \"host\"\n");
        assert_eq!(ok(&host).cluster.access, Access::Host);
        let bad = LAB.replace("[cluster]\n", "[cluster]\naccess = \"ssh\"\n");
        assert!(
            errs(&bad).contains("t.toml:3:10: unknown access `ssh`: expected one of exec, host"),
            "{}",
            errs(&bad)
        );
    }

    #[test]
    fn accepts_the_lab() {
        let t = ok(LAB);
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(t.cluster.transport, TransportKind::Lxc);
        assert_eq!(t.cluster.protocol, DEFAULT_PROTOCOL);
        assert_eq!(
            t.nodes[1].pod_cidrs,
            vec!["10.1.0.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(t.nodes[0].interface.as_deref(), Some("eth1"));
        assert_eq!(t.nodes[1].line, 10);
        assert_eq!(t.sha256.len(), 64);
    }

    #[test]
    fn persist_defaults_to_none_and_a_node_overrides_the_cluster() {
        let t = ok(LAB);
        assert_eq!(t.cluster.persist, Persist::None);
        assert!(t.nodes.iter().all(|n| n.persist == Persist::None));
        let t = ok(&LAB
            .replace(
                "pod_cidr = \"10.1.0.0/16\"",
                "pod_cidr = \"10.1.0.0/16\"\npersist = \"networkd\"",
            )
            .replace(
                "name = \"worker-0\"",
                "name = \"worker-0\"\npersist = \"none\"",
            ));
        assert_eq!(t.cluster.persist, Persist::Networkd);
        assert_eq!(t.nodes[0].persist, Persist::Networkd);
        assert_eq!(t.nodes[1].persist, Persist::None);
        let e = errs(&LAB.replace(
            "[[nodes]]\nname = \"worker-0\"",
            "[[nodes]]\nname = \"worker-0\"\npersist = \"netplan\"",
        ));
        assert!(
            e.contains(
                "node `worker-0`: persist `netplan` is not known: expected one of none, networkd, \
                 networkmanager, ifupdown, auto"
            ),
            "{e}"
        );
        assert!(e.contains("t.toml:12:"), "{e}");
    }

    #[test]
    fn dual_stack_arrays() {
        let t = ok(r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "w"
internal_ip = ["fd00::20", "10.0.2.20"]
pod_cidr = ["fd01::/64", "10.1.0.0/24"]
"#);
        assert_eq!(t.nodes[0].internal_ips[0].to_string(), "10.0.2.20");
        assert_eq!(t.nodes[0].pod_cidrs[1].to_string(), "fd01::/64");
    }

    #[test]
    fn reports_every_problem_with_position() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "-x"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.1/24"
[[nodes]]
name = "w1"
internal_ip = "10.1.0.9"
pod_cidr = "10.2.0.0/24"
"#,
        );
        assert!(e.contains("t.toml:6:8: node name `-x` is not valid"), "{e}");
        assert!(e.contains("t.toml:8:12: node `-x`: pod_cidr `10.1.0.1/24` has host bits set: did you mean 10.1.0.0/24?"), "{e}");
        assert!(
            e.contains("t.toml:12:12: node `w1`: pod_cidr 10.2.0.0/24 lies outside"),
            "{e}"
        );
    }

    #[test]
    fn overlaps_and_duplicates() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/16"
[[nodes]]
name = "b"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.1.0/24"
[[nodes]]
name = "a"
internal_ip = "10.1.5.5"
"#,
        );
        assert!(
            e.contains("overlaps pod_cidr 10.1.0.0/16 of node `a`"),
            "{e}"
        );
        assert!(e.contains("internal_ip 10.0.2.20 is already used"), "{e}");
        assert!(e.contains("duplicate node name `a`"), "{e}");
        assert!(
            e.contains("internal_ip 10.1.5.5 lies inside pod_cidr 10.1.0.0/16"),
            "{e}"
        );
    }

    #[test]
    fn syntax_and_unknown_keys() {
        let e = errs("[cluster]\ninterface = \"eth1\"\ncolour = 1\n");
        assert!(e.starts_with("t.toml:3:1: unknown field `colour`"), "{e}");
        assert_eq!(
            with_suggestion("unknown field `transprot`, expected one of `interface`, `transport`"),
            "unknown field `transprot`, expected one of `interface`, `transport`; did you mean \
             `transport`?"
        );
        assert!(
            with_suggestion("unknown field `internal-ip`, expected one of `name`, `internal_ip`")
                .ends_with("did you mean `internal_ip`?")
        );
        assert!(!with_suggestion("unknown field `zzz`, expected one of `name`").contains("mean"));
        let e = errs("[cluster\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn family_mismatch() {
        let e = errs(
            r#"
[cluster]
interface = "eth1"
[[nodes]]
name = "a"
internal_ip = "10.0.2.20"
pod_cidr = "fd01::/64"
"#,
        );
        assert!(
            e.contains("pod_cidr fd01::/64 is IPv6 but the node has no IPv6 internal_ip"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_names_the_position() {
        let e = parse(b"[cluster]\ninterface = \"e\xfftestsfile\"", "t.toml", None).unwrap_err();
        assert_eq!(e.0[0].line, 2);
        assert!(e.0[0].message.contains("UTF-8"));
    }

    #[test]
    fn control_characters_in_quoted_values_are_escaped() {
        // Regression: a name with a newline printed a raw newline, so a crafted name could add
        // a line such as `t.toml:1:1: …` to the report.
        let e = errs(
            "[cluster]\ninterface = \"eth1\"\n[[nodes]]\nname = \"w0\\nt.toml:1:1: fine\\u001b[2J\"\ninternal_ip = \"10.0.2.20\"\n",
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("t.toml:4:8: node name `w0\\nt.toml:1:1: fine\\u{1b}[2J` is not valid"),
            "{e}"
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn ssh_nodes_default_to_their_internal_ip_and_may_have_no_interface() {
        let mut t = ok(r#"
[cluster]
transport = "ssh"
ssh_config = "lab/ssh_config"
[[nodes]]
name = "server"
internal_ip = ["fd00::10", "10.0.4.10"]
[[nodes]]
name = "node-0"
address = "root@node-0.kubernetes.local"
internal_ip = "10.0.4.20"
pod_cidr = "10.3.0.0/24"
interface = "ens160"
"#);
        assert_eq!(t.nodes[0].instance, "10.0.4.10");
        assert_eq!(t.nodes[0].interface, None);
        assert_eq!(t.nodes[1].instance, "root@node-0.kubernetes.local");
        assert_eq!(t.nodes[1].interface.as_deref(), Some("ens160"));
        t.resolve_relative_to(std::path::Path::new("/etc/routectl"));
        assert_eq!(
            t.cluster.ssh_config.as_deref(),
            Some("/etc/routectl/lab/ssh_config")
        );
    }

    #[test]
    fn persist_networkd_needs_an_interface_on_ssh_nodes() {
        let e = errs(
            r#"
[cluster]
transport = "ssh"
persist = "networkd"
[[nodes]]
name = "a"
internal_ip = "10.0.4.20"
[[nodes]]
name = "b"
internal_ip = "10.0.4.21"
interface = "ens160"
"#,
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.contains("node `a`: persist = \"networkd\" needs the route interface"),
            "{e}"
        );
    }

    #[test]
    fn ssh_addresses_and_projects_are_checked() {
        let e = errs(
            r#"
[cluster]
transport = "ssh"
project = "p"
[[nodes]]
name = "a"
address = "root@-x"
internal_ip = "10.0.4.20"
[[nodes]]
name = "b"
address = "r oot@h"
internal_ip = "10.0.4.21"
"#,
        );
        assert!(
            e.contains("project is for transports `lxc` and `incus`, not `ssh`"),
            "{e}"
        );
        assert!(
            e.contains("address `root@-x` is not `host` or `user@host`"),
            "{e}"
        );
        assert!(
            e.contains("address `r oot@h` has a user name that is not valid"),
            "{e}"
        );
        let e = errs(
            "[cluster]\ninterface = \"eth1\"\nproject = \"--all\"\n[[nodes]]\nname = \"a\"\ninternal_ip = \"10.0.2.20\"\n",
        );
        assert!(
            e.contains("project `--all` is not a valid project name"),
            "{e}"
        );
        let t = ok(
            "[cluster]\ninterface = \"eth1\"\nproject = \"team-a\"\n[[nodes]]\nname = \"a\"\ninternal_ip = \"10.0.2.20\"\n[[nodes]]\nname = \"b\"\nproject = \"team-b\"\ninternal_ip = \"10.0.2.21\"\n",
        );
        assert_eq!(t.nodes[0].project.as_deref(), Some("team-a"));
        assert_eq!(t.nodes[1].project.as_deref(), Some("team-b"));
    }
}
