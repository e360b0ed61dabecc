//! Runs one script on the Luau scheduler with the standard library installed.

use std::{
    io::Write,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use mlua::prelude::*;
use mlua_luau_scheduler::{Functions, Scheduler};

/// `<runtime version>+<luau release>`, the second word of `_VERSION`.
pub(crate) fn version() -> String {
    let lua = Lua::new();
    let full = lune_std::version_string(&lua);
    full.trim_start_matches("Lune ").to_string()
}

/// Runs the script and returns the process exit code.
pub(crate) fn run(path: &Path, source: Vec<u8>, args: Vec<String>) -> u8 {
    match run_inner(path, source, args) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

fn report(error: &LuaError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{error}");
    let _ = err.flush();
}

fn run_inner(path: &Path, source: Vec<u8>, args: Vec<String>) -> LuaResult<u8> {
    let lua = Lua::new();
    lua.set_app_data(lune_utils::ScriptArgs(args));
    let scheduler = Scheduler::new(lua.clone());

    // Any uncaught error in any Luau thread is reported and fails the run.
    let failed = Arc::new(AtomicBool::new(false));
    {
        let failed = failed.clone();
        scheduler.set_error_callback(move |e| {
            failed.store(true, Ordering::SeqCst);
            report(&e);
        });
    }

    Functions::new(lua.clone())?.inject_compat(&lua)?;
    lune_std::inject_globals(&lua)?;

    let name = format!("@{}", path.display());
    let main = lua.load(source).set_name(name).into_function()?;
    scheduler.push_thread_front(main, ())?;
    lune_utils::reactor::block_on(scheduler.run());

    Ok(match scheduler.get_exit_code() {
        Some(code) => code,
        None if failed.load(Ordering::SeqCst) => 1,
        None => 0,
    })
}
