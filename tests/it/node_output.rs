//! Hostile `ip` output: what a node (or a broken transport) may print instead of a route table.
//! Never a panic; always routes or a clear error; never an empty table from bad output; and a
//! node whose output is refused gets no write.

use std::sync::Mutex;

use routectl::core::plan::{Options, Plan};
use routectl::core::route::{Destination, TABLE_MAIN};
use routectl::core::topology;
use routectl::error::CommandError;
use routectl::error::ParseError;
use routectl::node::apply::{self, Outcome};
use routectl::node::iproute::{parse_routes, parse_stream};
use routectl::node::observe;
use routectl::node::transport::{Invocation, Output, Transport};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/ip/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Output that is not a route table, each with why.
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("lone [ (missing table, iproute2 6.1)", fixture("missing-table-6.1.json")),
        ("lone [", b"[".to_vec()),
        ("garbage", b"garbage".to_vec()),
        ("an error message", b"Error: ipv4: FIB table does not exist.\nDump terminated\n".to_vec()),
        ("null", b"null".to_vec()),
        ("an object", b"{}".to_vec()),
        ("numbers", b"[1,2]".to_vec()),
        ("strings", b"[\"10.1.0.0/24\"]".to_vec()),
        ("nested arrays", b"[[]]".to_vec()),
        ("null route", b"[null]".to_vec()),
        ("object without dst", b"[{}]".to_vec()),
        ("dst null", br#"[{"dst":null,"protocol":"211"}]"#.to_vec()),
        ("two arrays", b"[] []".to_vec()),
        ("trailing garbage", b"[]x".to_vec()),
        ("byte order mark", b"\xef\xbb\xbf[]".to_vec()),
        ("NUL", b"[\0]".to_vec()),
        ("invalid UTF-8 in a string", b"[{\"dst\":\"10.1.0.0/24\",\"dev\":\"e\xfft\"}]".to_vec()),
        (
            "pre-5.5 multipath",
            br#"[{"dst":"10.9.0.0/24","protocol":"211","nexthops":[{"gateway":"10.0.2.21","dev":"eth1"}{"gateway":"10.0.2.22","dev":"eth1"}]}]"#.to_vec(),
        ),
        (
            "pre-5.5 metrics",
            br#"[{"dst":"10.1.1.0/24","protocol":"211","metrics":[{"mtu":1400}{"advmss":1360}]}]"#.to_vec(),
        ),
        ("metric not a number", br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":"low"}]"#.to_vec()),
        ("metric over 32 bits", br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":99999999999}]"#.to_vec()),
        ("metric 1e400", br#"[{"dst":"10.1.0.0/24","protocol":"211","metric":1e400}]"#.to_vec()),
        ("tos over 8 bits", br#"[{"dst":"10.1.0.0/24","protocol":"211","tos":"0x1ff"}]"#.to_vec()),
        ("deep arrays", "[".repeat(100_000).into_bytes()),
        (
            "deep value in a route",
            format!("[{{\"dst\":\"10.1.0.0/24\",\"x\":{}", "[".repeat(100_000)).into_bytes(),
        ),
        (
            "deep via objects",
            format!("[{{\"dst\":\"10.1.0.0/24\",\"via\":{}", "{\"host\":".repeat(50_000)).into_bytes(),
        ),
        (
            "deep nexthops",
            format!("[{{\"dst\":\"10.1.0.0/24\",\"nexthops\":[{{\"gateway\":{}", "[".repeat(50_000))
                .into_bytes(),
        ),
    ];
    // A real capture cut short: `lxc exec` killed, a pipe closed.
    let real = fixture("mixed-6.1.json");
    v.push(("truncated capture", real[..real.len() / 2].to_vec()));
    v.push((
        "capture without its last byte",
        real[..real.len() - 2].to_vec(),
    ));
    v
}

#[test]
fn hostile_output_is_an_error_never_a_table() {
    for (what, out) in hostile() {
        match parse_routes(&out) {
            Err(ParseError::Invalid { message, .. }) => {
                assert!(!message.is_empty(), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        if what != "two arrays" {
            assert!(parse_stream(&out).is_err(), "{what}");
        }
    }
    assert_eq!(parse_routes(b""), Err(ParseError::Empty));
    assert_eq!(parse_routes(b" \n\t"), Err(ParseError::Empty));
}

#[test]
fn deep_nesting_is_refused_without_exhausting_a_small_stack() {
    // serde_json stops typed values at 128 levels ("recursion limit exceeded") and skips ignored
    // values without recursing; prove it on a 256 KiB stack with a million levels.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let n = 1_000_000;
            [
                "[".repeat(n),
                format!("[{{\"dst\":\"10.1.0.0/24\",\"x\":{}", "[".repeat(n)),
                format!(
                    "[{{\"dst\":\"10.1.0.0/24\",\"via\":{}",
                    "{\"host\":".repeat(n)
                ),
                format!("[{{\"dst\":\"1.0.0.0/8\",\"flags\":[{}", "[".repeat(n)),
                format!(
                    "{}{}",
                    "[{\"dst\":\"1.0.0.0/8\",\"nexthops\":".repeat(n / 64),
                    "[]"
                ),
            ]
            .iter()
            .map(|deep| parse_routes(deep.as_bytes()).map(|r| r.len()))
            .collect::<Vec<_>>()
        })
        .expect("thread");
    let results = handle.join().expect("no stack overflow");
    for r in &results {
        assert!(matches!(r, Err(ParseError::Invalid { .. })), "{r:?}");
    }
    let via = results[2].as_ref().unwrap_err().to_string();
    assert!(via.contains("recursion limit exceeded"), "{via}");
}

#[test]
fn every_truncation_of_a_real_capture_is_refused() {
    for name in [
        "mixed-6.1.json",
        "loopback-only-6.1.json",
        "names-no-N-6.1.json",
    ] {
        let full = fixture(name);
        let end = full.iter().rposition(|b| *b == b']').expect("]");
        assert!(parse_routes(&full).is_ok(), "{name}");
        for len in 0..=end {
            let cut = &full[..len];
            assert!(parse_routes(cut).is_err(), "{name} cut at {len} parsed");
        }
    }
    // A batch stream cut after its first array is one whole array (apply's scripts end with a
    // single read-back, so a cut one is refused).
    let stream = fixture("batch-stream-6.1.json");
    let first_end = stream.iter().position(|b| *b == b'\n').expect("newline");
    for len in 0..stream.len() - 1 {
        if let Ok(tables) = parse_stream(&stream[..len]) {
            assert!(len >= first_end && tables.len() == 1, "{len}");
        }
    }
    assert_eq!(parse_stream(&stream).unwrap().len(), 2);
}

#[test]
fn binary_junk_never_panics_and_never_reads_as_a_table() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let real = fixture("mixed-6.1.json");
    for round in 0..3000 {
        let len = (next() % 512) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 1 {
            // Real output with a few bytes flipped.
            junk = real.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % junk.len();
                junk[at] = next() as u8;
            }
        }
        if let Ok(routes) = parse_routes(&junk) {
            assert!(!routes.is_empty(), "junk read as an empty table: {junk:?}");
            for r in &routes {
                let _ = r.to_string();
            }
        }
    }
}

#[test]
fn tolerated_quirks_read_as_the_routes_they_are() {
    // Duplicate keys (the route's own dst first, then an encap's), numbers for strings and
    // strings for numbers, names for numbers, unknown keys and shapes.
    let out = br#"[
        {"dst":"10.1.0.0/24","encap":"ip","id":1,"dst":"10.0.2.99","tos":0,"dev":"eth1","table":"254","protocol":"211","protocol":"211"},
        {"dst":"10.1.1.0/24","gateway":"10.0.2.21","dev":"eth1","table":254,"protocol":211,"metric":"0x10","type":1},
        {"dst":10,"table":"main","protocol":"boot"},
        {"dst":"10.1.2.0/24","gateway":true,"dev":["eth1"],"flags":"onlink","nexthops":{"a":1},"protocol":"99999999999999999999"},
        {"dst":"10.1.3.0/24","table":"99999999999","type":"-1","protocol":"-211"},
        {"dst":"default","protocol":"211"},
        {"dst":"0/24","protocol":"211","unknown":{"deep":[1,2,{"x":null}]}}
    ]"#;
    let r = parse_routes(out).unwrap();
    assert_eq!(r.len(), 7);
    assert_eq!(r[0].dst.to_string(), "10.1.0.0/24");
    assert_eq!((r[0].protocol, r[0].table), (211, TABLE_MAIN));
    assert_eq!(
        (r[1].protocol, r[1].table, r[1].metric),
        (211, TABLE_MAIN, 16)
    );
    assert_eq!(r[2].dst, Destination::Other("10".into()));
    assert_eq!(r[2].protocol, 3);
    assert_eq!(r[3].gateway(), None);
    assert_eq!(r[3].flags, ["onlink"]);
    assert_eq!(
        r[3].protocol, 0,
        "an unreadable protocol is never routectl's"
    );
    assert_ne!(r[4].table, TABLE_MAIN, "an unreadable table is never main");
    assert_ne!(r[4].protocol, 211);
    assert_eq!(r[5].dst, Destination::Default);
    assert!(matches!(r[6].dst, Destination::Other(_)));
    // Of these, routectl owns only routes it can name exactly.
    let owned: Vec<String> = r
        .iter()
        .filter(|x| routectl::core::diff::is_owned(x, 211))
        .map(|x| x.dst.to_string())
        .collect();
    assert_eq!(owned, ["10.1.0.0/24", "10.1.1.0/24", "0/24"]);
}

#[test]
fn a_100000_route_table_parses() {
    let mut out = String::from("[");
    for i in 0..100_000u32 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"type\":\"1\",\"dst\":\"10.{}.{}.0/24\",\"gateway\":\"10.0.2.21\",\"dev\":\"eth1\",\"table\":\"254\",\"protocol\":\"{}\",\"scope\":\"0\",\"flags\":[]}}",
            i / 256 % 256,
            i % 256,
            if i % 2 == 0 { 211 } else { 3 }
        ));
    }
    out.push(']');
    let started = std::time::Instant::now();
    let routes = parse_routes(out.as_bytes()).unwrap();
    eprintln!(
        "parsed 100,000 routes ({} bytes) in {:?}",
        out.len(),
        started.elapsed()
    );
    assert_eq!(routes.len(), 100_000);
    assert_eq!(routes[99_999].dst.to_string(), "10.134.159.0/24");

    // And through a plan: 50,000 owned routes nobody declared are 50,000 deletions, planned.
    let t = two_nodes();
    let canned = Canned::new(out.into_bytes());
    let plan = Plan::compute(&t, &Options::default(), 1, |n| {
        observe::read_node(&canned, n)
    });
    let deletes = plan.nodes[0]
        .changes()
        .iter()
        .filter(|c| c.action == routectl::core::change::Action::Delete)
        .count();
    assert_eq!(deletes, 50_000);
}

// ---------------------------------------------------------------------------------------------
// Through a transport to a plan and an apply.

/// Prints the same output for every read of node `w0`; `w1` reads `[]`.
struct Canned {
    out: Vec<u8>,
    calls: Mutex<Vec<(String, Vec<String>, bool)>>,
}

impl Canned {
    fn new(out: Vec<u8>) -> Canned {
        Canned {
            out,
            calls: Mutex::new(Vec::new()),
        }
    }
}

impl Transport for Canned {
    fn run(&self, instance: &str, inv: &Invocation) -> Result<Output, CommandError> {
        self.calls.lock().expect("lock").push((
            instance.to_string(),
            inv.args.clone(),
            inv.stdin.is_some(),
        ));
        let stdout = if inv.args == ["-V"] {
            b"ip utility, iproute2-6.1.0, libbpf 1.1.2\n".to_vec()
        } else if inv.stdin.is_some() {
            b"[]\n".to_vec()
        } else if instance == "w0" {
            self.out.clone()
        } else {
            b"[]\n".to_vec()
        };
        Ok(Output {
            argv: format!("lxc exec {instance} -- ip {}", inv.args.join(" ")),
            status: Some(0),
            stdout,
            stderr: String::new(),
        })
    }
}

fn two_nodes() -> routectl::core::topology::Topology {
    topology::parse(
        br#"
[cluster]
interface = "eth1"
[[nodes]]
name = "w0"
internal_ip = "10.0.2.20"
pod_cidr = "10.1.0.0/24"
[[nodes]]
name = "w1"
internal_ip = "10.0.2.21"
pod_cidr = "10.1.1.0/24"
"#,
        "t.toml",
        None,
    )
    .expect("topology")
}

#[test]
fn a_node_printing_hostile_output_is_unreadable_and_never_written() {
    let t = two_nodes();
    for (what, out) in hostile() {
        let canned = Canned::new(out);
        let plan = Plan::compute(&t, &Options::default(), 2, |n| {
            observe::read_node(&canned, n)
        });
        assert!(
            plan.nodes[0].state.is_err(),
            "{what}: {:?}",
            plan.nodes[0].state
        );
        assert!(plan.nodes[1].state.is_ok(), "{what}");
        canned.calls.lock().expect("lock").clear();
        let report = apply::apply(&plan, &t, &canned, 2);
        assert_eq!(report.nodes[0].outcome, Outcome::Unreachable, "{what}");
        let calls = canned.calls.lock().expect("lock").clone();
        assert!(
            calls.iter().all(|(inst, _, _)| inst != "w0"),
            "{what}: w0 got {calls:?}"
        );
        // w1 was written (its route to w0's pods), proving the apply did run.
        assert!(
            calls.iter().any(|(inst, _, stdin)| inst == "w1" && *stdin),
            "{what}"
        );
    }
}
