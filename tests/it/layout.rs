//! The integration tests stay one crate: a `.rs` file directly under tests/ would be a second
//! test target (cargo finds it by itself), with its own copy of the helpers. Its tests belong in
//! a module of tests/it/ (see tests/it/main.rs for which).

use crate::support::repo_file;

#[test]
fn every_integration_test_is_a_module_of_tests_it() {
    let mut strays: Vec<String> = std::fs::read_dir(repo_file("tests"))
        .expect("tests/")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                || p.join("main.rs").is_file() && !p.ends_with("it")
        })
        .map(|p| p.display().to_string())
        .collect();
    strays.sort();
    assert_eq!(
        strays,
        Vec::<String>::new(),
        "move these under tests/it/ as modules declared in tests/it/main.rs"
    );
}

#[test]
fn every_module_file_of_tests_it_is_declared() {
    let main = std::fs::read_to_string(repo_file("tests/it/main.rs")).expect("main.rs");
    for e in std::fs::read_dir(repo_file("tests/it")).expect("tests/it") {
        let p = e.expect("entry").path();
        let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if p.extension().is_some_and(|x| x == "rs") && stem != "main" || p.is_dir() {
            assert!(
                main.lines().any(|l| l == format!("mod {stem};")),
                "tests/it/{stem} is not declared in tests/it/main.rs: its tests would never run"
            );
        }
    }
}
