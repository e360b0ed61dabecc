//! Every generated `types/*.luau` passes Luau's analyzer with no errors.

use std::path::Path;

#[test]
fn generated_types_pass_the_analyzer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../types");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("types/ exists (run `cargo run -- setup`)")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "luau"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "types/ has definition files");
    let mut failures = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a types file is readable");
        let mut checker = luau_analyze::Checker::new().expect("the Luau analyzer starts");
        let result = checker.check(&source).expect("the analyzer runs");
        for diagnostic in result.errors() {
            failures.push(format!("{}: {diagnostic:?}", file.display()));
        }
    }
    assert!(failures.is_empty(), "type errors:\n{}", failures.join("\n"));
}
