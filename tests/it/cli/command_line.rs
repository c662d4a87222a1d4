//! The command line itself: help, version, usage errors, the examples of `--help`.

use super::*;

const GLOBAL_OPTIONS: &[&str] = &[
    "-f, --topology <FILE>",
    "--transport <KIND>",
    "-j, --parallelism <N>",
    "--timeout <DURATION>",
    "-v, --verbose",
    "-q, --quiet",
    "--color <WHEN>",
    "-h, --help",
];

#[test]
fn help_lists_every_command_and_global_option() {
    let lab = Fake::bare();
    let r = lab.run(&["--help"]);
    r.code(0);
    for needle in
        GLOBAL_OPTIONS
            .iter()
            .chain(&["-V, --version", "validate", "plan", "apply", "Exit codes"])
    {
        r.stdout_has(needle);
    }
    r.stdout_has("ROUTECTL_TOPOLOGY");
    // Every way of reaching nodes is named, SSH included (the man page says the same).
    r.stdout_has("machines reached over SSH");
    lab.run(&["man"])
        .code(0)
        .stdout_has("machines reached over SSH");
    lab.assert_no_calls();
}

/// A command's own options come first; the global ones (the lock, colour, transport) under a
/// heading of their own.
#[test]
fn discover_help_keeps_its_own_options_apart_from_the_global_ones() {
    let lab = Fake::bare();
    let r = lab.run(&["discover", "--help"]);
    r.code(0);
    let own = r.stdout.find("Options:").expect("Options:");
    let global = r.stdout.find("Global options:").expect("Global options:");
    for (needle, mine) in [
        ("--profile <", true),
        ("--from <", true),
        ("--lock-file <", false),
        ("--lock-timeout <", false),
        ("--color <", false),
    ] {
        let at = r.stdout.find(needle).expect(needle);
        assert_eq!((own..global).contains(&at), mine, "{needle}\n{}", r.stdout);
    }
}

#[test]
fn plan_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["plan", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&[
        "-o, --output <OUTPUT>",
        "text",
        "json",
        "markdown",
        "--detailed-exitcode",
        "--adopt",
        "--node <NAME>",
    ]) {
        r.stdout_has(needle);
    }
}

#[test]
fn apply_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["apply", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&[
        "-y, --auto-approve",
        "--adopt",
        "--node <NAME>",
        "-o, --output <OUTPUT>",
    ]) {
        r.stdout_has(needle);
    }
}

#[test]
fn validate_help_mentions_every_option() {
    let lab = Fake::bare();
    let r = lab.run(&["validate", "--help"]);
    r.code(0);
    for needle in GLOBAL_OPTIONS.iter().chain(&["-o, --output <OUTPUT>"]) {
        r.stdout_has(needle);
    }
}

#[test]
fn version_prints_the_package_version() {
    let lab = Fake::bare();
    for flag in ["--version", "-V"] {
        let r = lab.run(&[flag]);
        r.code(0);
        assert_eq!(
            r.stdout.trim(),
            format!("routectl {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let lab = Fake::case("empty-lab");
    for args in [
        &["--bogus"][..],
        &["plan", "--bogus"],
        &["apply", "--bogus", "--auto-approve"],
        &["validate", "--bogus"],
    ] {
        let r = lab.run(args);
        r.code(2).stderr_has("unexpected argument '--bogus'");
        assert_eq!(r.stdout, "", "{args:?}");
    }
    lab.assert_no_calls();
}

#[test]
fn missing_command_and_bad_values_are_usage_errors() {
    let lab = Fake::case("empty-lab");
    lab.run(&[]).code(2).stderr_has("Usage: routectl");
    for (args, needle) in [
        (&["plan", "--timeout", "5x"][..], "unknown unit"),
        (
            &["plan", "--timeout", "0s"],
            "is zero: this duration must be more than 0",
        ),
        (&["plan", "--timeout", "0.0s"], "is zero"),
        (&["plan", "--timeout", "0.0000000001s"], "1 ms"),
        (&["plan", "-j", "0"], "--parallelism"),
        (&["plan", "--output", "yaml"], "invalid value 'yaml'"),
        (
            &["plan", "--color", "sometimes"],
            "invalid value 'sometimes'",
        ),
        (&["plan", "--transport", "telnet"], "invalid value 'telnet'"),
        (&["plan", "-v", "-q"], "cannot be used with"),
    ] {
        lab.run(args).code(2).stderr_has(needle);
    }
    lab.assert_no_calls();
}

/// Every command line shown under "Examples:" in `--help` must be one routectl accepts.
#[test]
fn help_examples_are_accepted_command_lines() {
    let lab = Fake::case("in-sync");
    let help = lab.run(&["--help"]).stdout;
    let examples: Vec<Vec<String>> = help
        .lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .filter_map(|l| l.trim_start().strip_prefix("routectl "))
        .flat_map(|l| l.split("&& routectl "))
        .map(|cmd| {
            // The comment, if any, follows two spaces or more.
            let cmd = cmd.split("  ").next().unwrap().trim();
            cmd.split_whitespace().map(str::to_string).collect()
        })
        .collect();
    assert!(examples.len() >= 5, "{help}");
    for args in &examples {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = lab.run(&args);
        assert_ne!(
            r.code,
            2,
            "`routectl {}` from --help is rejected:\n{}",
            args.join(" "),
            r.stderr
        );
    }
}
