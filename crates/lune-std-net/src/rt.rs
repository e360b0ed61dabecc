//! All glue between hyper and the smol stack lives here: I/O adapters and the
//! timer come from `smol-hyper`; the executors decide where futures run.
//!
//! Futures that never touch Lua (hyper client connections, HTTP/2 streams,
//! TCP accept loops, TLS handshakes) run on a background I/O thread. Running
//! them on the scheduler's own executor starves them whenever Luau threads
//! keep each other busy (a `task.wait()` loop polls forever without yielding
//! to that executor), so they get a thread of their own.

use std::{future::Future, sync::OnceLock};

use async_executor::Executor;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

pub(crate) use smol_hyper::rt::{FuturesIo as HyperIo, SmolTimer as HyperTimer};

/// How many background I/O threads run `Send` futures.
const IO_THREADS: usize = 1;

fn io_executor() -> &'static Executor<'static> {
    static EXECUTOR: OnceLock<&'static Executor<'static>> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        let exec: &'static Executor<'static> = Box::leak(Box::new(Executor::new()));
        for i in 0..IO_THREADS {
            let spawned = std::thread::Builder::new()
                .name(format!("lune-net-io-{i}"))
                .spawn(move || async_io::block_on(exec.run(futures_lite::future::pending::<()>())));
            if let Err(e) = spawned {
                eprintln!("net: failed to start an I/O thread: {e}");
            }
        }
        exec
    })
}

/// Runs `fut` to completion on the background I/O thread.
pub(crate) fn spawn<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    io_executor().spawn(fut).detach();
}

/// hyper's executor for `Send` futures: the background I/O thread.
#[derive(Clone, Copy, Default)]
pub(crate) struct SendExecutor;

impl<F> hyper::rt::Executor<F> for SendExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        io_executor().spawn(fut).detach();
    }
}

/// Spawns futures that touch Lua (server connections and their HTTP/2
/// streams) on the scheduler's thread-local queue.
#[derive(Clone)]
pub(crate) struct LocalExecutor(Lua);

impl LocalExecutor {
    pub(crate) fn new(lua: Lua) -> Self {
        Self(lua)
    }
}

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn_local(async move {
            fut.await;
        });
    }
}

/// Gives memory that load left behind back to the system: a full garbage
/// collection of the Luau heap (nothing else collects it while no script
/// allocates), then the allocator's free pages (glibc keeps freed memory of
/// many small allocations mapped otherwise). Costs a few milliseconds, so it
/// runs when a server has gone idle, not per request.
pub(crate) fn release_memory(lua: &Lua) {
    let _ = lua.gc_collect();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own
    // arenas to the kernel; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The reverse of [`HyperIo`]: futures-io traits over a hyper I/O object,
/// for upgraded connections handed to WebSocket code.
pub(crate) struct FuturesIo<T>(pub(crate) T);

impl<T: hyper::rt::Read + Unpin> futures_lite::AsyncRead for FuturesIo<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut read_buf = hyper::rt::ReadBuf::new(buf);
        match std::pin::Pin::new(&mut self.0).poll_read(cx, read_buf.unfilled()) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(read_buf.filled().len())),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Write + Unpin> futures_lite::AsyncWrite for FuturesIo<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
