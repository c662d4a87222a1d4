//! The discovered topology as TOML text, written once, with comments for people.

use std::fmt::Write as _;

use super::{Candidate, Discovery, Item, Options, Source};

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn one_or_many<T: ToString>(values: &[T]) -> String {
    match values {
        [one] => quote(&one.to_string()),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| quote(&v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn node_text(c: &Candidate, o: &Options, out: &mut String) {
    for n in &c.notes {
        // A comment is one line: what it quotes of the source is escaped.
        let _ = writeln!(out, "# {}", crate::core::text::shown_message(n));
    }
    let _ = writeln!(out, "[[nodes]]\nname = {}", quote(&c.name));
    if let Some(i) = &c.instance {
        let _ = writeln!(out, "instance = {}", quote(i));
    }
    if let (Some(user), Some(ip)) = (&o.ssh_user, c.internal_ips.first()) {
        let _ = writeln!(out, "address = {}", quote(&format!("{user}@{ip}")));
    }
    let _ = writeln!(out, "internal_ip = {}", one_or_many(&c.internal_ips));
    if !c.pod_cidrs.is_empty() {
        let _ = writeln!(out, "pod_cidr = {}", one_or_many(&c.pod_cidrs));
    }
}

/// What `discover` says when the instances it merged lie on different subnets.
pub fn subnets_warning(d: &Discovery) -> Option<String> {
    let mixed = d.mixed_subnets();
    if mixed.is_empty() {
        return None;
    }
    let parts: Vec<String> = mixed
        .iter()
        .map(|(net, names)| format!("{net}: {}", names.join(", ")))
        .collect();
    Some(format!(
        "these instances are on different subnets ({}); host-gw routes need every node on one \
         shared segment: pick the cluster's instances with --project, --name or --profile",
        parts.join("; ")
    ))
}

/// The comments above the file: where it comes from, what it holds, what was left out.
fn header(d: &Discovery, out: &mut String) {
    let o = &d.options;
    let nodes = d.nodes().count();
    let with_pods = d.nodes().filter(|n| !n.pod_cidrs.is_empty()).count();
    let _ = writeln!(
        out,
        "# Discovered by `routectl discover` from `{}`: {} ({with_pods} with a pod CIDR), {} \
         skipped.",
        o.origin,
        crate::core::text::count(nodes, "node", "nodes"),
        d.skipped()
    );
    if matches!(d.source, Source::Lxc | Source::Incus) {
        let _ = writeln!(
            out,
            "# Project: {}.",
            crate::core::text::shown(o.project.as_deref().unwrap_or("default"))
        );
    }
    if let Some(w) = subnets_warning(d) {
        let _ = writeln!(out, "# WARNING: {w}");
    }
    let _ = writeln!(
        out,
        "# Review it, then: routectl validate -f FILE && routectl plan -f FILE\n"
    );
    if d.filtered_out > 0 {
        let names = o
            .name_patterns
            .iter()
            .map(|p| format!("--name {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let filters: Vec<String> = (!names.is_empty())
            .then_some(names)
            .into_iter()
            .chain(o.profile.iter().map(|f| format!("--profile {f}")))
            .chain(o.member.iter().map(|m| format!("--member {m}")))
            .collect();
        let filters = filters.join(" and ");
        let _ = writeln!(
            out,
            "# {} not matching {filters} left out.\n",
            crate::core::text::count(d.filtered_out, "instance", "instances"),
        );
    }
}

/// The `[cluster]` table.
fn cluster(d: &Discovery, out: &mut String) {
    let o = &d.options;
    let with_pods = d.nodes().filter(|n| !n.pod_cidrs.is_empty()).count();
    let _ = writeln!(out, "[cluster]");
    match &o.interface {
        Some(i) => {
            let _ = writeln!(out, "interface = {}", quote(i));
        }
        None => {
            let _ = writeln!(
                out,
                "# No interface: routes are written without `dev` and the kernel picks the \
                 device that reaches each gateway (as the tutorial's `ip route add` does)."
            );
        }
    }
    match d.source {
        Source::Kubernetes => {
            let _ = writeln!(
                out,
                "# Kubernetes does not say which interface holds the InternalIP, nor how to reach \
                 the nodes: check both (transport: lxc, incus or netns)."
            );
            let _ = writeln!(out, "transport = {}", quote(o.transport.name()));
        }
        Source::Lxc | Source::Incus | Source::Machines => {
            let _ = writeln!(out, "transport = {}", quote(o.transport.name()));
        }
    }
    if let Some(p) = &o.project {
        let _ = writeln!(out, "project = {}", quote(p));
    }
    if let Some(c) = &o.ssh_config {
        let _ = writeln!(out, "ssh_config = {}", quote(c));
    }
    if d.cluster_cidrs.is_empty() {
        if with_pods > 1 {
            let _ = writeln!(
                out,
                "# pod_cidr: no single obvious range covers every node's pod CIDR; add the \
                 cluster's if it has one."
            );
        }
    } else {
        let _ = writeln!(out, "pod_cidr = {}", one_or_many(&d.cluster_cidrs));
    }
}

/// The topology as TOML, with comments for people.
pub fn render(d: &Discovery) -> String {
    let o = &d.options;
    let mut out = String::new();
    header(d, &mut out);
    cluster(d, &mut out);
    for item in &d.items {
        out.push('\n');
        match item {
            Item::Node(c) => node_text(c, o, &mut out),
            Item::Skipped { name, reason } => {
                let _ = writeln!(
                    out,
                    "# skipped `{}`: {}",
                    crate::core::text::shown(name),
                    crate::core::text::shown_message(reason)
                );
            }
        }
    }
    out
}
