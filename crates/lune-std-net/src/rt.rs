//! All glue between hyper and the smol stack lives here: I/O adapters and the
//! timer come from `smol-hyper`; the executors spawn onto the scheduler's
//! executors so that connection tasks run on the Luau thread's event loop
//! without hopping threads.

use std::{
    future::Future,
    sync::{Arc, Weak},
};

use async_executor::Executor;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

pub(crate) use smol_hyper::rt::{FuturesIo as HyperIo, SmolTimer as HyperTimer};

/// Spawns `Send` futures (hyper client connections and HTTP/2 streams) on the
/// scheduler's executor.
#[derive(Clone)]
pub(crate) struct SendExecutor(Weak<Executor<'static>>);

impl SendExecutor {
    /// The executor of the scheduler running `lua`.
    pub(crate) fn of(lua: &Lua) -> LuaResult<Self> {
        lua.app_data_ref::<Weak<Executor<'static>>>()
            .map(|exec| Self(exec.clone()))
            .ok_or_else(|| LuaError::runtime("The net library needs a running scheduler"))
    }

    /// Runs `fut` to completion in the background.
    pub(crate) fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(exec) = self.0.upgrade() {
            exec.spawn(fut).detach();
        }
    }

    fn executor(&self) -> Option<Arc<Executor<'static>>> {
        self.0.upgrade()
    }
}

impl<F> hyper::rt::Executor<F> for SendExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        if let Some(exec) = self.executor() {
            exec.spawn(fut).detach();
        }
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
