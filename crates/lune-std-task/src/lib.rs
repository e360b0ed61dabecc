//! `@lune/task`: `spawn`, `defer`, `delay`, `wait` and `cancel`, backed by the
//! Luau scheduler of `mlua-luau-scheduler`.

use std::time::{Duration, Instant};

use async_io::Timer;
use lune_utils::TableBuilder;
use mlua::prelude::*;
use mlua_luau_scheduler::Functions;

/// `delay` is Luau on top of `defer` and `wait`: the waiting thread resumes
/// the target only if nobody cancelled or resumed it meanwhile.
const DELAY_LUAU: &str = r#"
local defer, spawn, wait = ...
return function(seconds, target, ...)
	if type(seconds) ~= "number" and seconds ~= nil then
		error("task.delay expects a number of seconds, got " .. typeof(seconds), 2)
	end
	local thread = if type(target) == "function" then coroutine.create(target) else target
	if type(thread) ~= "thread" then
		error("task.delay expects a function or thread, got " .. typeof(target), 2)
	end
	defer(function(...)
		wait(seconds)
		if coroutine.status(thread) == "suspended" then
			spawn(thread, ...)
		end
	end, ...)
	return thread
end
"#;

/// Builds the `@lune/task` table. Needs a scheduler attached to `lua`.
pub fn module(lua: Lua) -> LuaResult<LuaTable> {
    let fns = Functions::new(lua.clone())?;
    let wait =
        lua.create_async_function(|lua, seconds| lune_utils::wake_on_drop(wait(lua, seconds)))?;
    let delay = lua
        .load(DELAY_LUAU)
        .set_name("=task.delay")
        .call::<LuaFunction>((fns.defer.clone(), fns.spawn.clone(), wait.clone()))?;
    TableBuilder::new(lua)?
        .with_value("cancel", fns.cancel)?
        .with_value("defer", fns.defer)?
        .with_value("delay", delay)?
        .with_value("spawn", fns.spawn)?
        .with_value("wait", wait)?
        .build_readonly()
}

/// The `@lune/task` type definitions.
#[must_use]
pub fn typedefs() -> String {
    include_str!("../types.d.luau").to_string()
}

/// The shortest wait: `task.wait()` without an argument waits this long.
///
/// Every wait is a real timer, never an already-finished one: a loop of
/// `task.wait()` calls must let the event loop run (timers, sockets) between
/// iterations, which only happens when every Luau thread is suspended.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Waits `seconds` (one step when absent) and returns the time waited.
///
/// Arguments that are not a usable duration (NaN, negative, infinite, or too
/// large to represent) wait one step instead of failing or hanging forever,
/// as in Lune.
async fn wait(_: Lua, seconds: Option<f64>) -> LuaResult<f64> {
    let start = Instant::now();
    let duration = seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map_or(MIN_WAIT, |d| d.max(MIN_WAIT));
    Timer::after(duration).await;
    Ok(start.elapsed().as_secs_f64())
}
