//! `reconcile --watch` restores what others break, with either access, on network namespaces
//! and on the LXD lab; a flooding watcher is dropped, an idle watch runs nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::lab::Lab;
use crate::support::lxd::LxdLab;
use crate::support::netns::NetnsLab;
use crate::support::{Routectl, assert_code, sh};

use super::*;

/// A `routectl reconcile --watch` running in the background; killed on drop.
struct Reconciler {
    child: Child,
    log: PathBuf,
}

impl Reconciler {
    fn start(topology: &Path, dir: &Path, extra: &[&str]) -> Reconciler {
        Reconciler::start_with(topology, dir, extra, &[])
    }

    /// Started with these environment variables set (a PATH with fakes first).
    fn start_with(
        topology: &Path,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Reconciler {
        let log = dir.join("reconcile.log");
        let mut args = vec![
            "-f".to_string(),
            topology.display().to_string(),
            "--lock-file".to_string(),
            dir.join("watch.lock").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(
            ["reconcile", "--watch", "--interval", "60s"]
                .iter()
                .map(|s| s.to_string()),
        );
        let mut run = Routectl::new().args(&args);
        for (k, v) in env {
            run = run.env(k, v);
        }
        let child = run.spawn_logged(&log);
        let r = Reconciler { child, log };
        r.wait_log("watching ", Duration::from_secs(30));
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str, limit: Duration) {
        let t = Instant::now();
        while !self.log().contains(what) {
            assert!(t.elapsed() < limit, "no `{what}` in:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `ok` every 20 ms; the time it took, or a panic after `limit`.
    fn until(&self, what: &str, limit: Duration, ok: impl Fn() -> bool) -> Duration {
        let t = Instant::now();
        while !ok() {
            assert!(
                t.elapsed() < limit,
                "{what}: not within {limit:?}; reconcile log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        t.elapsed()
    }
}

impl Reconciler {
    /// The most memory the process has used so far (VmHWM), in KiB.
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the reconciler runs");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// The lines of the log so far that say `what`.
    fn count(&self, what: &str) -> usize {
        self.log().lines().filter(|l| l.contains(what)).count()
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The watch restores a deleted route and an address flush on a netns lab.
fn watch_restores_on_netns(access: &str) {
    let lab = NetnsLab::seed();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let extra: Vec<&str> = if access == "host" {
        vec!["--access", "host"]
    } else {
        vec![]
    };
    let r = Reconciler::start(lab.topology_path(), lab.dir(), &extra);
    let want = "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string();
    let has = || lab.table("worker-0").contains(&want);
    assert!(has());

    lab.ip("worker-0", "route del 10.1.1.0/24");
    let t = r.until("a deleted route is restored", Duration::from_secs(4), has);
    eprintln!("{access}: deleted route back in {t:?}");

    // An address re-add flushes the routes through the link without any route event.
    lab.ip("worker-0", "addr del 10.0.2.20/24 dev eth1");
    lab.ip("worker-0", "addr add 10.0.2.20/24 dev eth1");
    let t = r.until(
        "routes flushed by an address re-add are restored",
        Duration::from_secs(6),
        has,
    );
    eprintln!("{access}: address flush repaired in {t:?}");
    // Rounds the watch started repaired it (not the 60 s interval).
    assert!(
        r.log()
            .lines()
            .any(|l| l.contains("(changed: ") && l.contains("changed worker-0 (")),
        "{}",
        r.log()
    );
}

#[test]
#[ignore = "needs root: network namespaces and setns"]
fn watch_with_host_access_restores_deleted_routes_and_address_flushes_on_netns() {
    watch_restores_on_netns("host");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn watch_with_exec_access_restores_deleted_routes_and_address_flushes_on_netns() {
    watch_restores_on_netns("exec");
}

/// A directory with an `ip` that runs `FLOOD` (a shell command) in place of the exec watch's
/// `ip -n NS … monitor …` of namespace `ns`, and the real `ip` for everything else.
fn flooding_ip(dir: &Path, ns: &str, flood: &str) -> PathBuf {
    let real = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("ip"))
        .find(|p| p.is_file())
        .expect("ip on PATH");
    let bin = dir.join("flood-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = -n ] && [ \"$2\" = '{ns}' ]; then\n\
         \x20 for a in \"$@\"; do [ \"$a\" = monitor ] && exec sh -c '{flood}'; done\n\
         fi\n\
         exec {} \"$@\"\n",
        real.display()
    );
    let ip = bin.join("ip");
    std::fs::write(&ip, script).unwrap();
    sh(&["chmod", "755", &ip.display().to_string()]);
    bin
}

/// The exec watch of worker-1 floods (`flood`): routectl stays small, says so, drops that
/// watcher, and keeps serving worker-0.
fn a_flooding_watcher_is_dropped(flood: &str, said: &str) {
    let lab = NetnsLab::seed();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let bin = flooding_ip(lab.dir(), &lab.ns("worker-1"), flood);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = Reconciler::start_with(lab.topology_path(), lab.dir(), &[], &[("PATH", path)]);
    let want = "10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211".to_string();
    let has = || lab.table("worker-0").contains(&want);
    assert!(has());
    let t0 = Instant::now();
    let mut peak = 0;
    let mut deleted = 0;
    while t0.elapsed() < Duration::from_secs(6) {
        lab.ip("worker-0", "route del 10.1.1.0/24");
        deleted += 1;
        let t = r.until(
            "a route deleted on another node is restored",
            Duration::from_secs(4),
            has,
        );
        eprintln!("deleted route back in {t:?}");
        peak = r.peak_kib();
        assert!(peak < 100 * 1024, "VmHWM {peak} KiB; log:\n{}", r.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("peak memory {peak} KiB; {deleted} deletions repaired");
    r.wait_log(said, Duration::from_secs(10));
    assert!(
        r.count("watch of worker-1: `ip monitor` flooded") >= 1,
        "{}",
        r.log()
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_watcher_printing_an_endless_line_is_dropped_and_memory_stays_small() {
    a_flooding_watcher_is_dropped("exec cat /dev/zero", "a line longer than 64 KiB");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_watcher_printing_lines_without_end_is_dropped_and_the_others_served() {
    a_flooding_watcher_is_dropped("exec yes", "lines in 5 s (more than 5000 a second)");
}

/// The watch on the LXD lab: a deleted route, a restarted container.
fn watch_restores_on_lxd(extra: &[&str]) {
    let lab = LxdLab::take();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let dir = lab.dir().to_path_buf();
    let r = Reconciler::start(lab.topology_path(), &dir, extra);
    let want = "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211".to_string();
    let has = || lab.table("worker-2").contains(&want);
    assert!(has());
    lab.ip("worker-2", "route del 10.1.0.0/24");
    let t = r.until("a deleted route is restored", Duration::from_secs(4), has);
    eprintln!("{extra:?}: deleted route back in {t:?}");

    let started = Instant::now();
    restart(&lab, "worker-2");
    let t = r.until(
        "a restarted container's routes",
        Duration::from_secs(12),
        has,
    );
    eprintln!(
        "{extra:?}: restarted container's routes back {t:?} after it was ready, {:?} after \
         the restart began",
        started.elapsed()
    );
}

/// A project of its own with a container named like a lab node, removed on drop.
struct Namesake {
    project: &'static str,
    name: &'static str,
}

impl Namesake {
    fn lxc(&self, args: &[&str]) {
        let mut all = args.to_vec();
        all.extend(["--project", self.project]);
        crate::support::lxd::lxc(&all);
    }

    fn clear(project: &str, name: &str) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("lxc")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["delete", "--force", name, "--project", project]);
        quiet(&["project", "delete", project]);
    }
}

impl Drop for Namesake {
    fn drop(&mut self) {
        Namesake::clear(self.project, self.name);
    }
}

/// An idle exec watch on the in-sync LXD lab runs nothing after its start (LXD's
/// `instance-exec` events of its own reads are no change), a namesake of a node in another
/// project starting, restarting, stopping and going is no change either; a deleted route and a
/// restarted node still are.
#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn an_idle_watch_on_lxd_runs_nothing_and_another_projects_namesake_is_not_a_node() {
    let lab = LxdLab::take();
    assert_code(&lab.run(&["apply", "--auto-approve"]), 0);
    let dir = lab.dir().to_path_buf();
    let r = Reconciler::start(lab.topology_path(), &dir, &["-v"]);
    // The watchers report their nodes when they start: one round (or two) for that.
    r.wait_log("(changed: ", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    let (rounds, execs) = (r.count(" round "), r.count("+ lxc exec"));
    std::thread::sleep(Duration::from_secs(10));
    let quiet = |what: &str| {
        assert_eq!(
            (r.count(" round "), r.count("+ lxc exec")),
            (rounds, execs),
            "{what}: rounds and execs; reconcile log:\n{}",
            r.log()
        );
    };
    quiet("idle for 10 s");
    eprintln!("idle: {rounds} rounds, {execs} execs at the start, none in 10 s");

    let other = Namesake {
        project: "routectl-watch-namesake",
        name: "worker-2",
    };
    Namesake::clear(other.project, other.name);
    crate::support::lxd::lxc(&[
        "project",
        "create",
        other.project,
        "-c",
        "features.images=false",
        "-c",
        "features.profiles=false",
    ]);
    other.lxc(&["init", "routectl-lab", other.name]);
    other.lxc(&["start", other.name]);
    other.lxc(&["restart", "--force", other.name]);
    other.lxc(&["stop", "--force", other.name]);
    other.lxc(&["delete", other.name]);
    std::thread::sleep(Duration::from_secs(2));
    quiet("a namesake in another project");

    let want = "10.1.0.0/24 via 10.0.2.20 dev eth1 proto 211".to_string();
    let has = || lab.table("worker-2").contains(&want);
    lab.ip("worker-2", "route del 10.1.0.0/24");
    let t = r.until("a deleted route is restored", Duration::from_secs(4), has);
    eprintln!("deleted route back in {t:?}");
    restart(&lab, "worker-2");
    r.until(
        "a restarted container's routes",
        Duration::from_secs(12),
        has,
    );
    assert!(
        r.log().contains("(changed: worker-2)"),
        "the restart started a round: {}",
        r.log()
    );
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn watch_with_host_access_restores_routes_and_a_restarted_container_on_lxd() {
    watch_restores_on_lxd(&["--access", "host"]);
}

#[test]
#[ignore = "needs the LXD lab (scripts/test.sh brings it up and runs these)"]
fn watch_with_exec_access_restores_routes_and_a_restarted_container_on_lxd() {
    watch_restores_on_lxd(&[]);
}
