//! The malformed and dangerous topology corpus (tests/topologies/*.toml): every file must be
//! refused by the binary, by `validate` and by `plan`, with exit code 1, a message
//! `FILE:LINE:COL: …` holding the fragment its first line announces
//! (`# expect: LINE:COL: fragment`), and without running anything: `lxc`, `incus` and `ip` on
//! PATH are the one fake (tests/fakes/lxc), recording any call.

use std::path::{Path, PathBuf};

use routectl::core::topology::{self, MAX_FILE_BYTES, TransportKind};

use crate::support::fake::Fake;

/// The fake `lxc` and `incus`, and the same fake as `ip`, with no answers: every call is
/// recorded and fails.
struct FakeBin(Fake);

impl FakeBin {
    fn new() -> FakeBin {
        let fake = Fake::bare();
        fake.install("ip");
        FakeBin(fake)
    }

    fn dir(&self) -> &Path {
        self.0.dir()
    }

    /// Every call recorded, one line each.
    fn calls(&self) -> String {
        self.0.calls().join("\n")
    }

    /// Runs routectl; returns (exit code, stderr).
    fn routectl(&self, args: &[&str]) -> (Option<i32>, String) {
        let run = self.0.run(args);
        (Some(run.code), run.stderr)
    }
}

/// `# expect: LINE:COL: fragment` from a file's first line.
fn expectation(bytes: &[u8]) -> Option<(usize, usize, String)> {
    let first = bytes.split(|b| *b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    let rest = first.strip_prefix("# expect: ")?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.trim().parse().ok()?;
    let col = parts.next()?.trim().parse().ok()?;
    Some((line, col, parts.next()?.trim().to_string()))
}

/// Checks one refused file through `validate` and `plan`.
fn refused(fake: &FakeBin, path: &Path, line: usize, col: usize, fragment: &str) {
    let p = path.display().to_string();
    for command in ["validate", "plan"] {
        let (code, stderr) = fake.routectl(&[command, "-f", &p]);
        assert_eq!(code, Some(1), "{command} {p}: exit code\n{stderr}");
        let prefix = format!("{p}:{line}:{col}: ");
        assert!(
            stderr.lines().any(|l| l
                .split_once(&prefix)
                .is_some_and(|(_, m)| m.contains(fragment))),
            "{command} {p}: no line `{prefix}…{fragment}` in:\n{stderr}"
        );
    }
    assert_eq!(fake.calls(), "", "{p}: a node command ran");
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/topologies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/topologies")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_is_refused_with_its_position_and_runs_nothing() {
    let files = corpus();
    assert!(files.len() >= 40, "only {} corpus files", files.len());
    let fake = FakeBin::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        let (line, col, fragment) = expectation(&bytes)
            .unwrap_or_else(|| panic!("{}: no `# expect: L:C: …` line", path.display()));
        refused(&fake, path, line, col, &fragment);
        // The library says the same, with the same position.
        let problems = topology::parse(&bytes, "x.toml", None).expect_err("refused");
        assert!(
            problems
                .0
                .iter()
                .any(|p| (p.line, p.column) == (line, col) && p.message.contains(&fragment)),
            "{}: {problems}",
            path.display()
        );
    }
}

#[test]
fn an_empty_file_is_refused() {
    let fake = FakeBin::new();
    let path = fake.dir().join("empty.toml");
    std::fs::write(&path, "").expect("write");
    refused(&fake, &path, 1, 1, "no nodes declared");
}

#[test]
fn a_file_over_16_mib_is_refused_before_it_is_read() {
    let fake = FakeBin::new();
    let path = fake.dir().join("huge.toml");
    let mut text = String::from("[cluster]\ninterface = \"eth1\"\n");
    let node = "[[nodes]]\nname = \"w0\"\ninternal_ip = \"10.0.2.20\"\n";
    while text.len() <= MAX_FILE_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    text.push_str(node);
    std::fs::write(&path, &text).expect("write");
    refused(
        &fake,
        &path,
        1,
        1,
        "a topology may be at most 16777216 bytes",
    );
    let problems = topology::parse(text.as_bytes(), "huge.toml", None).expect_err("refused");
    assert!(problems.to_string().contains("at most 16777216 bytes"));
}

#[test]
fn names_a_shell_or_lxc_could_misread_are_rejected_at_load_time() {
    let fake = FakeBin::new();
    let names = [
        "worker-0;reboot",
        "--help",
        "-n",
        "$(id)",
        "`id`",
        "a b",
        "w0\nreboot",
        "w0|cat",
        "w0&",
        "w0>x",
        "../etc",
        "w0'",
        "w0\"",
        "w0\\",
        "w0\u{0}",
        "*",
        "~root",
    ];
    for (i, name) in names.iter().enumerate() {
        let escaped: String = name.chars().flat_map(char::escape_default).collect();
        for field in ["name", "instance", "interface"] {
            let mut node = format!("name = \"w{i}\"\n");
            match field {
                "name" => node = format!("name = \"{escaped}\"\n"),
                other => node.push_str(&format!("{other} = \"{escaped}\"\n")),
            }
            let text = format!(
                "[cluster]\ninterface = \"eth1\"\n[[nodes]]\n{node}internal_ip = \"10.0.2.20\"\n"
            );
            for transport in [None, Some(TransportKind::Netns)] {
                let e = topology::parse(text.as_bytes(), "t.toml", transport);
                assert!(e.is_err(), "{field} {name:?} accepted ({transport:?})");
            }
            let path = fake.dir().join(format!("n{i}-{field}.toml"));
            std::fs::write(&path, &text).expect("write");
            let p = path.display().to_string();
            for command in ["validate", "plan"] {
                let (code, stderr) = fake.routectl(&[command, "-f", &p]);
                assert_eq!(code, Some(1), "{command} {field} {name:?}: {stderr}");
                let line = if field == "name" { 4 } else { 5 };
                assert!(stderr.contains(&format!("{p}:{line}:")), "{stderr}");
            }
        }
    }
    assert_eq!(fake.calls(), "", "a node command ran");
}

#[test]
fn an_endless_device_is_refused_not_read_until_memory_runs_out() {
    let fake = FakeBin::new();
    refused(
        &fake,
        Path::new("/dev/zero"),
        1,
        1,
        "it is a character device, not a regular file; a topology must be a regular file",
    );
}
