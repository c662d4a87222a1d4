//! The model against the kernel: scripted batches run on a real network namespace and on the
//! model print the same stdout, stderr and exit status.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::model::{KRoute, Node};

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rtsafe-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(&["ip", "netns", "add", &name]);
        Netns(name)
    }

    fn batch(&self, options: &[&str], script: &str) -> (String, String, i32) {
        let mut child = Command::new("ip")
            .args(["-n", &self.0])
            .args(options)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip");
        let mut stdin = child.stdin.take().expect("stdin");
        let script = script.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let out = child.wait_with_output().expect("ip");
        writer.join().expect("writer").expect("write");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn dump(&self) -> String {
        let out = Command::new("ip")
            .args([
                "-n", &self.0, "-N", "-d", "-j", "route", "show", "table", "all",
            ])
            .output()
            .expect("ip");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(argv: &[&str]) {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Per JSON array of a stream: routes grouped by (family, table, dst), in printed order.
type Groups = Vec<BTreeMap<(bool, String, String), Vec<String>>>;

fn groups(stdout: &str) -> Groups {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Vec<serde_json::Value>>()
        .map(|table| {
            let mut g: BTreeMap<(bool, String, String), Vec<String>> = BTreeMap::new();
            for r in table.expect("JSON array") {
                let key = (
                    r.get("pref").is_some(),
                    r["table"].to_string(),
                    r["dst"].to_string(),
                );
                // Compare objects whatever their key order.
                let canonical = serde_json::to_string(&r).expect("json");
                g.entry(key).or_default().push(canonical);
            }
            g
        })
        .collect()
}

/// The namespace's starting table: every kind of route the model knows, foreign and owned.
const SETUP: &str = "link set lo up
link add eth1 type bridge
link set eth1 up
link add eth0 type bridge
link set eth0 up
addr add 10.0.2.20/24 dev eth1
addr add fd00::20/64 dev eth1 nodad
route add default via 10.0.2.1 dev eth1
route add default via 10.0.2.2 dev eth1 proto 211 metric 100
route add default via fd00::1 dev eth1
route add 10.1.1.0/24 via 10.0.2.21 dev eth1 proto 211
route add 10.1.2.0/24 via 10.0.2.22 dev eth1 proto 186 metric 5
route add blackhole 10.8.0.0/24
route add unreachable 10.7.0.0/16 proto 4
route add 10.9.0.0/24 nexthop via 10.0.2.21 dev eth1 nexthop via 10.0.2.22 dev eth1
route add 10.1.3.0/24 via 10.0.2.23 dev eth1 table 100 proto 211
route add 10.1.4.0/24 via 10.0.2.24 dev eth1 proto 211 tos 0x10
route add 10.1.5.0/24 via 10.0.2.25 dev eth1 proto 211 metric 7
route add 10.1.30.0/24 via 10.0.2.31 dev eth1 proto 3
route append 10.1.30.0/24 via 10.0.2.32 dev eth1 proto 211
route add 10.1.31.0/24 via 10.0.2.31 dev eth1 proto 211
route append 10.1.31.0/24 via 10.0.2.32 dev eth1 proto 211
route add 10.1.32.7 via 10.0.2.21 dev eth1 proto 211
route add fd01:1::/64 via fd00::21 dev eth1 proto 211
route add fd01:3::/64 nexthop via fd00::21 dev eth1 nexthop via fd00::22 dev eth1
route add blackhole fd02::/64 proto 211
route add fd05::/64 from fd06::/64 via fd00::21 dev eth1 proto 211
";

/// The batches run on both, each followed by a dump.
const SCRIPTS: [&str; 4] = [
    // File exists; replace creating and overwriting (a foreign route); del of another
    // protocol's route; IPv4 del with metric 0 matching any metric; IPv6 metric 0 -> 1024.
    "route add 10.1.1.0/24 via 10.0.2.29 dev eth1 table 254 proto 211 metric 0
route replace 10.1.6.0/24 via 10.0.2.26 dev eth1 table 254 proto 211 metric 0
route replace 10.1.2.0/24 via 10.0.2.27 dev eth1 table 254 proto 211 metric 5
route del 10.9.0.0/24 table 254 proto 211 metric 0
route del 10.1.5.0/24 table 254 proto 211 metric 0
route add fd01:7::/64 via fd00::27 dev eth1 table 254 proto 211 metric 0
route add fd01:1::/64 via fd00::29 dev eth1 table 254 proto 211 metric 1024
route show table all",
    // Device and gateway errors, host bits, tos and from on del, the shared keys.
    "route add 10.1.21.0/24 via 10.0.2.21 dev eth9 table 254 proto 211 metric 0
route add 10.1.22.0/24 via 10.9.9.9 dev eth1 table 254 proto 211 metric 0
route add 10.1.23.0/24 via 10.0.2.21 dev eth0 table 254 proto 211 metric 0
route add 10.1.24.1/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0
route del 10.1.4.0/24 table 254 proto 211 metric 0
route del 10.1.4.0/24 table 254 proto 211 metric 0 tos 0x10
route del fd05::/64 table 254 proto 211 metric 1024
route del fd05::/64 table 254 proto 211 metric 1024 from fd06::/64
route replace 10.1.30.0/24 via 10.0.2.33 dev eth1 table 254 proto 211 metric 0
route del 10.1.31.0/24 table 254 proto 211 metric 0
route replace fd01:3::/64 via fd00::23 dev eth1 table 254 proto 211 metric 1024
route del fd02::/64 table 254 proto 211 metric 1024
route del 10.1.32.7/32 table 254 proto 211 metric 0
route show table all
route show table all",
    // An argument error aborts the batch; the lines before it stay done.
    "route add 10.1.40.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric 0
route add 10.1.41.0/24 via 10.0.2.21 dev eth1 table 254 proto 211 metric x
route show table all",
    "route frobnicate
route show table all",
];

#[test]
#[ignore = "needs root: a network namespace"]
fn model_matches_the_kernel() {
    let ns = Netns::new("model");
    let (_, err, status) = ns.batch(&[], SETUP);
    assert_eq!(status, 0, "setup: {err}");

    // The kernel adds some routes of links that just came up on its own time (IPv6 link-local
    // and multicast): the table is taken once two dumps 200 ms apart agree.
    let mut real = ns.dump();
    for _ in 0..25 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let again = ns.dump();
        if again == real {
            break;
        }
        real = again;
    }
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&real).expect("real dump");
    let mut node = Node::new(&["lo", "eth0", "eth1"], Vec::new());
    // Ingest in printed order: appended aliases stay behind the route they follow.
    node.routes = parsed.iter().map(KRoute::from_json).collect();
    assert_eq!(
        groups(&format!("{}\n", node.dump())),
        groups(&real),
        "printing"
    );

    for script in SCRIPTS {
        let (out, err, status) = ns.batch(&["-N", "-d", "-j", "-force"], &format!("{script}\n"));
        let (mout, merr, mstatus) = node.batch(&format!("{script}\n"));
        assert_eq!(
            (mstatus, &merr),
            (status, &err),
            "status and stderr of:\n{script}"
        );
        assert_eq!(groups(&mout), groups(&out), "stdout of:\n{script}");
        assert_eq!(
            groups(&format!("{}\n", node.dump())),
            groups(&ns.dump()),
            "tables after:\n{script}"
        );
    }
}
