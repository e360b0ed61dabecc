//! All glue between hyper and the smol stack lives here: the sockets
//! ([`conn`]), hyper's timer ([`timer`]), I/O adapters, and the executors
//! that decide where futures run.
//!
//! Everything runs on the Luau thread, with no hop to another thread per
//! request: server connections are tasks of the scheduler, and each client
//! connection's tasks run while a script waits on it ([`ConnTasks`]).

use std::future::Future;

use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

mod conn;
pub(crate) mod connect;
mod peer_io;
mod stream;
mod tasks;
mod timer;
pub(crate) mod tls;

pub(crate) use conn::{TcpConn, UnixConn};
pub(crate) use peer_io::{Activity, PeerIo};
pub(crate) use stream::{Stream, TlsAlert, TlsInfo};
pub(crate) use tasks::{ClientExecutor, ConnTasks};
pub(crate) use timer::HyperTimer;

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

/// futures-io traits over a hyper I/O object,
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
