//! Test-only crate: its test runs Luau's analyzer (the `luau-analyze` crate,
//! in-process) over every generated `types/*.luau` file in strict mode.
//!
//! It lives apart from the runtime crates because `luau-analyze` and `mlua`
//! both embed Luau's C++ sources, whose symbols collide in one binary.
