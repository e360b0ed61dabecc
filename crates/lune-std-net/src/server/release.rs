//! Memory a load left behind is given back once a server goes idle: a full
//! garbage collection of the Luau heap (nothing else collects it while no
//! script allocates), then the allocator's free pages (glibc keeps freed
//! memory of many small allocations mapped otherwise). It costs a few
//! milliseconds, so it runs when a server has had no connection for
//! [`IDLE_RELEASE`], not per request.

use std::time::Duration;

use futures_lite::future;
use mlua::prelude::*;

use super::connections::Connections;

/// How long a server must have had no connections before the memory its
/// last load left behind is released.
const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// Releases memory each time the server has had no connection for
/// [`IDLE_RELEASE`]; never ends by itself (it runs beside the accept loop
/// and goes with it).
pub(super) async fn when_idle(connections: &Connections, lua: &Lua) {
    loop {
        connections.until(|open| open == 0).await;
        let idle = future::or(
            async {
                async_io::Timer::after(IDLE_RELEASE).await;
                true
            },
            async {
                connections.until(|open| open > 0).await;
                false
            },
        )
        .await;
        if idle && connections.idle_since().elapsed() >= IDLE_RELEASE {
            release_memory(lua);
            connections.until(|open| open > 0).await;
        }
    }
}

fn release_memory(lua: &Lua) {
    // A failed collection (an error in a `__gc`) leaves the heap as it was;
    // the pages below are still worth giving back.
    if let Err(e) = lua.gc_collect() {
        crate::report::error(&format!(
            "net.serve: collecting garbage while idle failed: {e}"
        ));
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own
    // arenas to the kernel; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
