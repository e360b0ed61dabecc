//! Why a request failed, as the script reads it.

use std::{fmt, time::Duration};

use super::{connect::ConnectError, redirect::RedirectError};

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
