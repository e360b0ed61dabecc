//! The generated `types/` stay in step with each library's `types.d.luau`
//! (the analyzer check lives in the `lune-typecheck` crate).

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
