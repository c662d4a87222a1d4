//! Shell completions and the man page come from the same clap definitions as `--help`.

use crate::support::Routectl;

fn routectl(args: &[&str]) -> (i32, String) {
    let run = Routectl::new().args(args).run();
    (run.code, run.stdout)
}

#[test]
fn completions_for_each_shell_know_the_subcommands_and_options() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, text) = routectl(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        for word in [
            "plan",
            "apply",
            "reconcile",
            "detailed-exitcode",
            "auto-approve",
        ] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert_eq!(routectl(&["completions", "tcsh"]).0, 2);
}

#[test]
fn the_man_page_is_roff_with_every_command() {
    let (code, text) = routectl(&["man"]);
    assert_eq!(code, 0);
    assert!(
        text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH routectl"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains(".TH routectl"));
    for word in [
        "validate",
        "plan",
        "apply",
        "show",
        "check",
        "discover",
        "reconcile",
    ] {
        assert!(text.contains(word), "man page lacks {word}");
    }
}
