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
use mlua_luau_scheduler::{Functions, LuaSchedulerExt, Scheduler};

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

/// Luau threads kept for reuse by async calls from Rust (a served request's
/// handler runs on one): a finished thread is reset and taken again instead
/// of a new one made and collected per call.
const THREAD_POOL: usize = 64;

fn run_inner(path: &Path, source: Vec<u8>, args: Vec<String>) -> LuaResult<u8> {
    let lua = Lua::new_with(
        LuaStdLib::ALL_SAFE,
        LuaOptions::new().thread_pool_size(THREAD_POOL),
    )?;
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
    lune_utils::reactor::block_on(async {
        watch_signals(&lua);
        scheduler.run().await;
    });

    Ok(match scheduler.get_exit_code() {
        Some(code) => code,
        None if failed.load(Ordering::SeqCst) => 1,
        None => 0,
    })
}

/// SIGINT and SIGTERM end the script with 130 and 143 (128 + the signal),
/// as a shell reports a process they ended: the first one sets the exit
/// code, so the scheduler stops and drops everything still open (listeners
/// close first of all, a Unix socket's file is removed); a second one while
/// that is under way (or a Luau loop that never yields) ends the process at
/// once. The wait is a background task: it keeps no script running.
fn watch_signals(lua: &Lua) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("lune: cannot watch SIGINT and SIGTERM ({e}); they end the process at once");
            return;
        }
    };
    let (first, received) = async_channel::bounded::<u8>(1);
    let spawned = std::thread::Builder::new()
        .name("lune-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let code = u8::try_from(128 + signal).unwrap_or(u8::MAX);
                // Full (a signal is already being handled) or closed (the
                // run is over): end now.
                if first.try_send(code).is_err() {
                    std::process::exit(i32::from(code));
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("lune: cannot watch SIGINT and SIGTERM ({e}); they end the process at once");
        return;
    }
    let lua = lua.clone();
    let waiting = lune_utils::background::spawn(async move {
        if let Ok(code) = received.recv().await {
            lua.set_exit_code(code);
        }
    });
    // Only a nested block_on has no background, and this one is the outermost.
    debug_assert!(waiting.is_ok(), "the runtime's block_on has a background");
}
