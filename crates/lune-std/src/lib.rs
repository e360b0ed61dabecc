//! The Lune standard library: the one registry of `@lune/*` libraries, the
//! globals every script sees (`print`, `warn`, `_VERSION`, `require`) and the
//! module loader behind `require`.

use mlua::prelude::*;

mod globals;
mod library;
mod require;

pub use library::{LIBRARIES, Library};

/// Installs the globals (`print`, `warn`, `_VERSION`, `require`) into `lua`.
///
/// Must be called after a [`mlua_luau_scheduler::Scheduler`] was created for
/// `lua`, since libraries such as `@lune/task` talk to it.
pub fn inject_globals(lua: &Lua) -> LuaResult<()> {
    globals::inject(lua)?;
    require::inject(lua)
}

/// The value of `_VERSION`: `Lune <runtime version>+<luau release>`.
#[must_use]
pub fn version_string(lua: &Lua) -> String {
    globals::version_string(lua)
}
