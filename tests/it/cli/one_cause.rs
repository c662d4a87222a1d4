//! One cause, one message: what would fail every node the same way is found once, up front.

use super::*;

/// Runs the binary as `nobody` (no groups), in `dir`, with only `env` (and a PATH).
fn as_nobody(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(support::bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null()).output().unwrap()
}

const FOUR_NODES: &str = "\n[[nodes]]\nname = \"w0\"\ninternal_ip = \"10.0.2.20\"\npod_cidr = \"10.1.0.0/24\"\n\n[[nodes]]\nname = \"w1\"\ninternal_ip = \"10.0.2.21\"\npod_cidr = \"10.1.1.0/24\"\n\n[[nodes]]\nname = \"w2\"\ninternal_ip = \"10.0.2.22\"\npod_cidr = \"10.1.2.0/24\"\n";

#[test]
#[ignore = "needs root: runs routectl as nobody"]
fn a_daemon_socket_that_refuses_the_user_is_said_once_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    fs::write(
        &topo,
        format!("[cluster]\ninterface = \"eth1\"\n{FOUR_NODES}"),
    )
    .unwrap();
    // A daemon socket only root may use (as LXD's is for users outside the lxd group).
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("unix.socket")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        dir.path().join("unix.socket"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = as_nobody(
        dir.path(),
        &["plan"],
        &[("LXD_DIR", dir.path().to_str().unwrap())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("permission denied").count(), 1, "{stderr}");
    assert!(
        stderr.contains("Add yourself to the `lxd` group (`sudo usermod -aG lxd \"$USER\"`"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no node is tried");
}

#[test]
#[ignore = "needs root: runs routectl as nobody"]
fn host_access_and_the_runtime_directory_name_the_one_real_cause() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    fs::write(
        &topo,
        format!("[cluster]\ninterface = \"eth1\"\ntransport = \"netns\"\n{FOUR_NODES}"),
    )
    .unwrap();
    let out = as_nobody(dir.path(), &["--access", "host", "plan"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("host access needs root"), "{stderr}");
    // apply as another user without XDG_RUNTIME_DIR: that, and only that, is said.
    let out = as_nobody(dir.path(), &["apply", "--auto-approve"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "routectl is not running as root (/run/routectl is root's) and XDG_RUNTIME_DIR is \
             not set to an absolute path. Set ROUTECTL_RUNTIME_DIR"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("is relative"), "{stderr}");
    let out = as_nobody(
        dir.path(),
        &["apply", "--auto-approve"],
        &[("ROUTECTL_RUNTIME_DIR", "run")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ROUTECTL_RUNTIME_DIR `run` is not an absolute path"),
        "{stderr}"
    );
    // --help says where the runtime directory is taken from.
    let help = as_nobody(dir.path(), &["--help"], &[]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("$ROUTECTL_RUNTIME_DIR"));
}

/// An apply that wrote nothing (only conflicts stand on the one node asked for) does not report
/// a write time.
#[test]
fn an_apply_that_writes_nothing_says_so_instead_of_a_time() {
    let lab = Fake::case("conflict");
    let r = lab.run(&[
        "apply",
        "--auto-approve",
        "--color",
        "never",
        "--node",
        "worker-1",
    ]);
    r.code(1);
    assert!(
        !lab.calls().iter().any(|c| c.contains("-batch")),
        "nothing written"
    );
    let last = r.stdout.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("Apply: 0 operations applied"), "{r:?}");
    assert!(last.ends_with("node commands; nothing written)."), "{r:?}");
}
