//! End-to-end scenarios written once and run on every real lab (network namespaces, LXD; see
//! tests/it/support/lab.rs for what a lab is and how to add one). Each scenario is a function
//! of `&dyn Lab` in a submodule by behaviour; the `every_lab!` call at the end turns each into one test per lab, named
//! `scenarios::LAB::SCENARIO` (`cargo test --test it -- --include-ignored scenarios::lxd::`).
//!
//! A lab is topology.example.toml's four nodes (controller-0, worker-0/1/2 on 10.0.2.0/24,
//! pod CIDRs 10.1.0-2.0/24), so every scenario may count on those names and addresses. A
//! scenario changes the lab only through the trait (and routectl); it edits the topology only
//! in a variant written into the test's directory ([`Lab::variant`]), never the lab's file.

use std::collections::BTreeSet;

use routectl::core::topology::TransportKind;

use crate::support::lab::Lab;

mod canary;
mod changes;
mod converge;
mod guards;
mod show_check;

// The scenarios, each a `pub fn(&dyn Lab)`, named here for `every_lab!`.
use canary::*;
use changes::*;
use converge::*;
use guards::*;
use show_check::*;

/// What `routectl -v` prints for a command routectl runs in a node (other than `ip`). A new
/// transport adds its line here (the match is exhaustive on purpose).
fn verbose_line(lab: &dyn Lab, node: &str, command: &str) -> String {
    let instance = &lab.topology().node(node).expect("a lab node").instance;
    match lab.transport() {
        TransportKind::Lxc => format!("+ lxc exec {instance} --force-noninteractive -- {command}"),
        TransportKind::Incus => {
            format!("+ incus exec {instance} --force-noninteractive -- {command}")
        }
        TransportKind::Netns => format!("+ ip netns exec {instance} {command}"),
        TransportKind::Ssh => format!("-- {instance} {command}"),
    }
}

/// How `show` heads a node: its name, and its instance when that differs.
fn show_header(lab: &dyn Lab, node: &str) -> String {
    let instance = &lab.topology().node(node).expect("a lab node").instance;
    if instance == node {
        format!("{node}:\n")
    } else {
        format!("{node} (instance ")
    }
}

/// The failed paths of a check, as `from -> to`.
fn failed(j: &serde_json::Value) -> BTreeSet<String> {
    j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "fail")
        .map(|p| {
            format!(
                "{} -> {}",
                p["from"].as_str().unwrap(),
                p["to"].as_str().unwrap()
            )
        })
        .collect()
}

/// Makes a test per lab of each scenario: `every_lab!(scenarios: [A, B]; labs: NAME: "why it
/// is ignored" => constructor, …)`.
macro_rules! every_lab {
    (scenarios: $scenarios:tt; labs: $($lab:ident: $why:literal => $take:expr),* $(,)?) => {
        $( on_lab!($lab, $why, $take, $scenarios); )*
    };
}

macro_rules! on_lab {
    ($lab:ident, $why:literal, $take:expr, [$($scenario:ident),* $(,)?]) => {
        mod $lab {
            $(
                #[test]
                #[ignore = $why]
                fn $scenario() {
                    super::$scenario(&$take);
                }
            )*
        }
    };
}

every_lab!(
    scenarios: [
        plan_from_empty_lists_nine_adds_and_changes_nothing,
        apply_converges_then_changes_nothing,
        drift_is_repaired_only_where_owned,
        a_conflicting_foreign_route_is_reported_and_never_changed,
        a_restarted_node_gets_its_routes_back,
        a_mistyped_internal_ip_is_every_nodes_error_and_nothing_is_written,
        a_saved_plan_applies_only_while_it_matches_the_nodes_and_the_topology,
        a_removed_node_and_a_changed_cidr_are_cleaned_up,
        a_mass_deletion_is_held_back_unless_allowed,
        one_nodes_mass_deletion_holds_back_only_its_deletions,
        one_apply_at_a_time_and_a_killed_holder_leaves_no_lock,
        show_marks_every_route_and_agrees_with_the_plan,
        show_save_round_trips_through_plan_observed,
        check_passes_after_apply_and_names_the_pair_of_a_deleted_route,
        take_over_replaces_exactly_the_routes_in_the_way,
        drift_is_told_from_topology_changes,
        canary_stops_a_bad_topology_and_rolls_out_a_good_one,
    ];
    labs:
        netns: "needs root: network namespaces" => crate::support::netns::NetnsLab::seed(),
        lxd: "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lxd::LxdLab::take(),
        incus: "needs root: the Incus lab (scripts/test.sh brings it up and runs these)"
            => crate::support::incus::IncusLab::take(),
        netns_host: "needs root: network namespaces and setns"
            => crate::support::lab::HostAccess::of(crate::support::netns::NetnsLab::seed()),
        lxd_host: "needs root: the LXD lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lab::HostAccess::of(crate::support::lxd::LxdLab::take()),
        incus_host: "needs root: the Incus lab (scripts/test.sh brings it up and runs these)"
            => crate::support::lab::HostAccess::of(crate::support::incus::IncusLab::take()),
);
