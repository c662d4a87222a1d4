//! What a node writes reaches routectl's output only as data: a hostile last-applied record
//! (kept on this host for a network namespace) is planted for a node, and `plan`, `show` and
//! `reconcile` in every format are read for raw control characters, forged lines and a Markdown
//! fence the data could close. Needs root (network namespaces).

use crate::support::Run;
use crate::support::lab::Lab;
use crate::support::netns::NetnsLab;

/// A record field a node's root could write: a newline, an erase-line sequence, a carriage
/// return, a forged summary line, a Markdown fence and what would follow it, a C1 CSI and a
/// bidi override.
const HOSTILE: &str = "2026-12-01T19:00:00Z\n\u{1b}[2K\rPlan: 0 to add, 0 to replace, 0 to delete on 0 of 4 nodes.\n```\n# FORGED by the node \u{9b}31m\u{202e}";

/// The characters that must never reach the output raw (a line break is the output's own).
fn is_raw_control(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn assert_no_raw_control(what: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if let Some((i, c)) = text.char_indices().find(|&(_, c)| is_raw_control(c)) {
            panic!(
                "{what}: {stream} holds a raw {:?} at byte {i}: {:?}",
                c,
                text.get(i.saturating_sub(80)..(i + 80).min(text.len()))
                    .unwrap_or(text)
            );
        }
    }
    // Only routectl's own summary starts a line with `Plan:`.
    for text in [&run.stdout, &run.stderr] {
        let forged = text
            .lines()
            .filter(|l| {
                l.trim_start()
                    .starts_with("Plan: 0 to add, 0 to replace, 0 to delete on 0")
            })
            .count();
        assert_eq!(forged, 0, "{what}: a forged summary line: {run:?}");
    }
}

/// Each line of `md` with whether it is inside a fenced code block (CommonMark: a fence of
/// three or more backticks is closed by a line of at least as many backticks and nothing else).
fn fenced_lines(md: &str) -> Vec<(bool, &str)> {
    let mut open: Option<usize> = None;
    let mut out = Vec::new();
    for line in md.lines() {
        let t = line.trim_start();
        let ticks = t.len() - t.trim_start_matches('`').len();
        match open {
            None if ticks >= 3 => {
                open = Some(ticks);
                out.push((false, line));
            }
            Some(n) if ticks >= n && t.trim_end().len() == ticks => {
                open = None;
                out.push((false, line));
            }
            o => out.push((o.is_some(), line)),
        }
    }
    assert_eq!(open, None, "a code block is left open:\n{md}");
    out
}

fn assert_markdown_keeps_data_fenced(what: &str, run: &Run) {
    assert_no_raw_control(what, run);
    let lines = fenced_lines(&run.stdout);
    let forged: Vec<&(bool, &str)> = lines.iter().filter(|(_, l)| l.contains("FORGED")).collect();
    assert!(
        !forged.is_empty(),
        "{what}: the record is not shown:\n{}",
        run.stdout
    );
    assert!(
        forged.iter().all(|(inside, _)| *inside),
        "{what}: node data outside a code block:\n{}",
        run.stdout
    );
}

/// Replaces the string fields of a node's record (keeping its binding, so it is used).
fn plant(lab: &NetnsLab, node: &str, edit: impl Fn(&mut serde_json::Value)) {
    let path = format!("/run/routectl/last-applied/{}.json", lab.ns(node));
    let text = std::fs::read_to_string(&path).expect("the record, kept on this host");
    let mut record: serde_json::Value = serde_json::from_str(&text).expect("a record");
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_hostile_record_reaches_every_format_as_data() {
    let lab = NetnsLab::seed();
    lab.run(&["apply", "--auto-approve"]).code(0);
    // worker-0: a record in use (its binding kept) whose strings are hostile; a route deleted by
    // hand makes a drift change, which quotes the record's time.
    plant(&lab, "worker-0", |r| {
        r["applied_at"] = HOSTILE.into();
        r["routectl_version"] = HOSTILE.into();
    });
    // worker-1: a record of before a restart (another binding), whose warning quotes the
    // record's time.
    plant(&lab, "worker-1", |r| {
        r["applied_at"] = HOSTILE.into();
        r["binding"] = HOSTILE.into();
    });
    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");

    let text = lab.run(&["plan"]);
    text.code(0);
    assert_no_raw_control("plan", &text);
    text.stdout_has("since the last apply at 2026-12-01T19:00:00Z\\n\\u{1b}[2K\\rPlan: 0 to add")
        .stdout_has("worker-1 restarted since the last apply (at 2026-12-01T19:00:00Z\\n");
    assert_eq!(
        text.stdout
            .lines()
            .filter(|l| l.starts_with("Plan:"))
            .count(),
        1,
        "{text:?}"
    );

    let md = lab.run(&["plan", "--output", "markdown"]);
    md.code(0);
    assert_markdown_keeps_data_fenced("plan --output markdown", &md);

    let json = lab.run(&["plan", "--output", "json"]);
    json.code(0);
    assert_no_raw_control("plan --output json", &json);
    let doc = json.json();
    // JSON carries the exact value.
    assert_eq!(
        doc["nodes"][1]["last_applied"]["applied_at"], HOSTILE,
        "{doc:#}"
    );

    let show = lab.run(&["show"]);
    show.code(0);
    assert_no_raw_control("show", &show);
    show.stdout_has("last applied: 2026-12-01T19:00:00Z\\n\\u{1b}[2K");
    let show_md = lab.run(&["show", "--output", "markdown"]);
    show_md.code(0);
    assert_markdown_keeps_data_fenced("show --output markdown", &show_md);
    let show_json = lab.run(&["show", "--output", "json"]);
    show_json.code(0);
    assert_no_raw_control("show --output json", &show_json);

    let json_log = lab.run(&["reconcile", "--once", "--log-format", "json"]);
    assert_no_raw_control("reconcile --once --log-format json", &json_log);
    json_log.code(0);
    // The round repaired worker-0; the record it wrote is routectl's own again.
    lab.ip("worker-0", "route del 10.1.1.0/24 proto 211");
    plant(&lab, "worker-0", |r| r["applied_at"] = HOSTILE.into());
    let once = lab.run(&["reconcile", "--once"]);
    assert_no_raw_control("reconcile --once", &once);
    once.code(0);
}
