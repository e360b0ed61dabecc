//! `fetch`: one request from Rust, with no Luau state. Lune's CLI calls it
//! (`lune build` downloads cross-compilation targets with it), so it keeps
//! the shape Lune's own `lune_std_net::fetch` has. It is a thin adapter over
//! the same [`Client`] as `net.request`: pooling, redirects, trust, proxies
//! and decompression all come from there.

use std::{collections::HashMap, rc::Rc};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use url::Url;

use crate::shared::body::BodySource;

use super::{
    Client, ResponseBody,
    config::{RequestConfig, RequestOptions},
    default_user_agent,
};

/// A response from [`fetch`]: status, headers and the whole body.
#[derive(Debug)]
pub struct FetchResponse {
    inner: http::Response<FetchBody>,
}

impl FetchResponse {
    /// The response as an [`http::Response`]. Its extensions hold the
    /// [`Url`] the response finally came from, after redirects.
    #[must_use]
    pub fn into_inner(self) -> http::Response<FetchBody> {
        self.inner
    }
}

/// The body of a [`FetchResponse`], read to the end and decompressed.
#[derive(Debug, Clone, Default)]
pub struct FetchBody(Bytes);

impl FetchBody {
    /// The body's bytes.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The body's bytes, borrowed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Sends one request (`GET` unless `method` says otherwise) and returns the
/// final response, after following redirects. Any status is a response; an
/// error is a request that could not be made, as a message for people.
///
/// Unless `headers` has one, the `User-Agent` is `lune/<this crate's
/// version>`. Proxies come from `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`,
/// as for `net.request`. The future must be polled on a thread that runs
/// `async-io` (for example inside `async_io::block_on`); the connection is
/// driven by the future itself, on that thread.
#[allow(
    clippy::implicit_hasher,
    reason = "Lune's CLI collects its headers into whatever map this names; a hasher parameter would leave that type uninferable"
)]
pub async fn fetch(
    url: Url,
    method: Option<Method>,
    headers: Option<HashMap<String, String>>,
    body: Option<Vec<u8>>,
) -> Result<FetchResponse, String> {
    let mut header_list = Vec::new();
    for (name, value) in headers.unwrap_or_default() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("Invalid header name '{name}'"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("Invalid value for header '{name}'"))?;
        header_list.push((name, value));
    }
    let config = RequestConfig {
        url: url.into(),
        method: method.unwrap_or(Method::GET),
        query: Vec::new(),
        headers: header_list,
        body: body.map_or(BodySource::Empty, |b| BodySource::Bytes(Bytes::from(b))),
        options: RequestOptions::default(),
        lua: None,
        // No Luau thread to be cancelled: a Rust caller cancels by dropping.
        caller: Rc::new(|| true),
        user_agent: default_user_agent(),
    };
    let response = Client::new()
        .request(config)
        .await
        .map_err(|e| e.to_string())?;
    // Not streamed, so the body was read whole.
    let ResponseBody::Full(body) = response.body else {
        return Err("the response body was not read whole".to_string());
    };
    let mut inner = http::Response::new(FetchBody(body));
    *inner.status_mut() = response.status;
    *inner.version_mut() = response.version;
    *inner.headers_mut() = response.headers;
    inner.extensions_mut().insert(response.url);
    Ok(FetchResponse { inner })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use http::{Method, StatusCode};
    use url::Url;

    use super::fetch;

    fn http_fixture() -> String {
        let fixtures = lune_test_fixtures::start().expect("fixtures start");
        fixtures
            .env()
            .into_iter()
            .find(|(k, _)| k == "LUNE_TEST_HTTP")
            .map(|(_, v)| v)
            .expect("the http fixture")
    }

    fn url(text: &str) -> Url {
        text.parse().expect("a valid url")
    }

    #[test]
    fn fetch_sends_method_headers_and_body_through_the_client() {
        let base = http_fixture();
        async_io::block_on(async {
            let headers = HashMap::from([("X-Test".to_string(), "yes".to_string())]);
            let response = fetch(
                url(&format!("{base}/echo")),
                Some(Method::POST),
                Some(headers),
                Some(b"hello".to_vec()),
            )
            .await
            .expect("the request succeeds");
            let (parts, body) = response.into_inner().into_parts();
            assert_eq!(parts.status, StatusCode::OK, "echo answers 200");
            let text = String::from_utf8(body.into_bytes().to_vec()).expect("json");
            assert!(text.contains(r#""method":"POST""#), "method sent: {text}");
            assert!(text.contains(r#""body":"hello""#), "body sent: {text}");
            assert!(text.contains(r#""x-test":["yes"]"#), "header sent: {text}");
            let agent = concat!(
                r#""user-agent":["lune/"#,
                env!("CARGO_PKG_VERSION"),
                r#""]"#
            );
            assert!(text.contains(agent), "default user agent: {text}");
        });
    }

    #[test]
    fn fetch_follows_redirects_and_returns_any_status() {
        let base = http_fixture();
        async_io::block_on(async {
            let response = fetch(url(&format!("{base}/redirect/2")), None, None, None)
                .await
                .expect("the request succeeds");
            let response = response.into_inner();
            assert_eq!(response.status(), StatusCode::OK, "redirects are followed");
            let last = response.extensions().get::<Url>().cloned();
            assert_eq!(
                last.map(|u| u.path().to_string()).as_deref(),
                Some("/redirect/0"),
                "the final url is in the extensions"
            );
            let body = response.into_body().into_bytes();
            assert_eq!(&body[..], b"redirected", "the final body");

            let missing = fetch(url(&format!("{base}/status/404")), None, None, None)
                .await
                .expect("a 404 is a response, not an error");
            assert_eq!(missing.into_inner().status(), StatusCode::NOT_FOUND);
        });
    }

    #[test]
    fn fetch_reports_connection_errors_as_messages() {
        async_io::block_on(async {
            let error = fetch(url("http://127.0.0.1:9/"), None, None, None)
                .await
                .expect_err("nothing listens on port 9");
            assert!(
                error.contains("127.0.0.1:9"),
                "the message names the address: {error}"
            );
        });
    }
}
