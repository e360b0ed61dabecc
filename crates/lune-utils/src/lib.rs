//! Helpers shared by the Lune runtime's libraries: building module tables,
//! formatting Luau values for `print` and `stdio.format`, and the script's
//! arguments as the runtime hands them to `@lune/process`; the runtime's
//! own reactor for network sockets and the `block_on` that drives it.

use mlua::prelude::*;

pub mod background;
pub mod fmt;
pub mod jsonc;
pub mod reactor;
pub mod tasks;
mod wake_on_drop;

pub use wake_on_drop::{WakeOnDrop, wake_on_drop};

/// Locks `mutex`, recovering it from a panic of another holder: every user
/// of it in this runtime changes the guarded value in single steps (a push,
/// a take, an assignment), so a panic elsewhere leaves it consistent.
pub fn lock<T: ?Sized>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The arguments given to the script after its path (`lune run script a b`),
/// stored as Lua app data by the runtime before libraries are loaded.
#[derive(Debug, Clone, Default)]
pub struct ScriptArgs(pub Vec<String>);

/// The runtime version reported by `lune --version`, `_VERSION` and the
/// default `User-Agent` of `net.request`.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An error with its chain of sources, joined by `: `, for people.
#[must_use]
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A value's type as Luau names it: whole numbers are `number`, not `integer`.
#[must_use]
pub fn type_name(value: &LuaValue) -> &'static str {
    match value {
        LuaValue::Integer(_) | LuaValue::Number(_) => "number",
        other => other.type_name(),
    }
}

/// Builds a Luau table one entry at a time, for module tables and results.
pub struct TableBuilder {
    lua: Lua,
    table: LuaTable,
}

impl TableBuilder {
    /// Starts an empty table.
    pub fn new(lua: Lua) -> LuaResult<Self> {
        let table = lua.create_table()?;
        Ok(Self { lua, table })
    }

    /// Sets `key` to `value`.
    pub fn with_value(self, key: impl IntoLua, value: impl IntoLua) -> LuaResult<Self> {
        self.table.raw_set(key, value)?;
        Ok(self)
    }

    /// Sets every pair of `values`.
    pub fn with_values<K: IntoLua, V: IntoLua>(
        self,
        values: impl IntoIterator<Item = (K, V)>,
    ) -> LuaResult<Self> {
        for (key, value) in values {
            self.table.raw_set(key, value)?;
        }
        Ok(self)
    }

    /// Sets `key` to a synchronous Rust function.
    pub fn with_function<A, R, F>(self, key: impl IntoLua, func: F) -> LuaResult<Self>
    where
        A: FromLuaMulti,
        R: IntoLuaMulti,
        F: Fn(&Lua, A) -> LuaResult<R> + mlua::MaybeSend + 'static,
    {
        let f = self.lua.create_function(func)?;
        self.with_value(key, f)
    }

    /// Sets `key` to an async Rust function; calling it yields the Luau thread
    /// until the future completes.
    pub fn with_async_function<A, R, F, FR>(self, key: impl IntoLua, func: F) -> LuaResult<Self>
    where
        A: FromLuaMulti + 'static,
        R: IntoLuaMulti,
        F: Fn(Lua, A) -> FR + mlua::MaybeSend + 'static,
        FR: std::future::Future<Output = LuaResult<R>> + mlua::MaybeSend + 'static,
    {
        let f = self
            .lua
            .create_async_function(move |lua, args| wake_on_drop(func(lua, args)))?;
        self.with_value(key, f)
    }

    /// Gives the table a metatable.
    pub fn with_metatable(self, metatable: LuaTable) -> LuaResult<Self> {
        self.table.set_metatable(Some(metatable))?;
        Ok(self)
    }

    /// Finishes the table.
    pub fn build(self) -> LuaResult<LuaTable> {
        Ok(self.table)
    }

    /// Finishes the table and makes it read-only.
    pub fn build_readonly(self) -> LuaResult<LuaTable> {
        self.table.set_readonly(true);
        Ok(self.table)
    }
}

/// The exit code of a process ended by a Rust panic (Rust's own convention).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Makes every Rust panic, on any thread, end the process with
/// [`PANIC_EXIT_CODE`] after printing its message. Executors catch panics of
/// detached tasks and carry on, so without this a panic inside a library
/// call could silently end a script's thread and let the process exit 0.
pub fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!("lune: a Rust panic ended the process (this is a bug in the runtime)");
        std::process::exit(PANIC_EXIT_CODE);
    }));
}
