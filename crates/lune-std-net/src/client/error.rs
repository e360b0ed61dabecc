//! Why a request failed, as the script reads it.

use std::{fmt, time::Duration};

use super::redirect::RedirectError;
use crate::rt::connect::ConnectError;
use crate::shared::body::BodyError;

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum RequestError {
    Url(String),
    Connect(ConnectError),
    Http {
        url: String,
        source: hyper::Error,
    },
    Body {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    Timeout(Duration),
    Redirect(RedirectError),
    Decompress {
        encoding: String,
        source: std::io::Error,
    },
    /// The response body is larger than `options.maxBodySize`.
    TooLarge {
        limit: usize,
        url: String,
    },
    /// The script's body function failed: its error, as the script raised it.
    Stream(BodyError),
    /// A 307/308 redirect would need a streamed body sent again.
    StreamRedirect {
        url: String,
        status: u16,
    },
    /// A proxy variable of the environment is unusable.
    Proxy(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(message) | Self::Proxy(message) => write!(f, "{message}"),
            Self::Connect(e) => write!(f, "{e}"),
            Self::Http { url, source } => {
                write!(f, "Request to {url} failed: {}", describe(source))
            }
            Self::Body { url, source } => write!(
                f,
                "Connection broken while reading the response body from {url}: {}",
                describe(source.as_ref())
            ),
            Self::TooLarge { limit, url } => write!(
                f,
                "Response body from {url} is larger than the limit of {limit} bytes (maxBodySize)"
            ),
            Self::Timeout(d) => write!(f, "Request timed out after {} seconds", d.as_secs_f64()),
            Self::Redirect(e) => write!(f, "{e}"),
            Self::Stream(e) => write!(f, "{e}"),
            Self::StreamRedirect { url, status } => write!(
                f,
                "Cannot follow the {status} redirect from {url}: the request body was streamed by a function and cannot be sent again"
            ),
            Self::Decompress { encoding, source } => {
                write!(
                    f,
                    "Failed to decompress the '{encoding}' response body: {source}"
                )
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// An error with its chain of sources, for people.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl RequestError {
    /// A failed exchange: the script's own body error when that is what
    /// stopped it, otherwise hyper's.
    pub(crate) fn from_hyper(url: &url::Url, source: hyper::Error) -> Self {
        let mut cause = std::error::Error::source(&source);
        while let Some(e) = cause {
            if let Some(body) = e.downcast_ref::<BodyError>() {
                return Self::Stream(body.clone());
            }
            cause = e.source();
        }
        Self::Http {
            url: url.to_string(),
            source,
        }
    }
}
