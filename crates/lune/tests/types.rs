//! The generated `types/` stay in step with each library's `types.d.luau`,
//! and every definition file passes Luau's own analyzer in strict mode.

use std::path::{Path, PathBuf};

fn types_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../types")
}

#[test]
fn generated_types_are_fresh() {
    let mut stale = Vec::new();
    for lib in lune_std::LIBRARIES {
        let path = types_dir().join(format!("{}.luau", lib.name));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != (lib.typedefs)() {
            stale.push(lib.name);
        }
    }
    assert!(
        stale.is_empty(),
        "types/ is stale for {stale:?} - run `cargo run -- setup` (or scripts/gen-types.sh) and commit types/"
    );
}

#[test]
fn generated_types_pass_the_analyzer() {
    let mut failures = Vec::new();
    for lib in lune_std::LIBRARIES {
        let mut checker = luau_analyze::Checker::new().expect("the Luau analyzer starts");
        let source = (lib.typedefs)();
        let result = checker.check(&source).expect("the analyzer runs");
        for diagnostic in result.errors() {
            failures.push(format!("types/{}.luau: {diagnostic:?}", lib.name));
        }
    }
    assert!(failures.is_empty(), "type errors:\n{}", failures.join("\n"));
}
