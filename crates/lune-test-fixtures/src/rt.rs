//! The fixtures' own executor (two background threads) and the hyper glue.

use std::{
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
};

use async_executor::Executor;

pub(crate) use smol_hyper::rt::{FuturesIo as HyperIo, SmolTimer};

static EXECUTOR: OnceLock<&'static Executor<'static>> = OnceLock::new();

/// The executor, started with its threads on first use.
pub(crate) fn executor() -> &'static Executor<'static> {
    EXECUTOR.get_or_init(|| {
        let exec: &'static Executor<'static> = Box::leak(Box::new(Executor::new()));
        for i in 0..2 {
            std::thread::Builder::new()
                .name(format!("lune-test-fixtures-{i}"))
                .spawn(move || async_io::block_on(exec.run(futures_lite::future::pending::<()>())))
                .expect("the fixture threads start");
        }
        exec
    })
}

/// Runs `fut` in the background.
pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    executor().spawn(fut).detach();
}

/// hyper's executor for HTTP/2 streams.
#[derive(Clone, Copy)]
pub(crate) struct Exec;

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        executor().spawn(fut).detach();
    }
}

/// futures-io traits over a hyper I/O object (an upgraded connection).
pub(crate) struct FromHyper<T>(pub(crate) T);

impl<T: hyper::rt::Read + Unpin> futures_lite::AsyncRead for FromHyper<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut read_buf = hyper::rt::ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, read_buf.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read_buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: hyper::rt::Write + Unpin> futures_lite::AsyncWrite for FromHyper<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
