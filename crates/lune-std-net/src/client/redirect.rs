//! The redirect policy of `net.request`: whether a response is followed,
//! where to, and what of the request survives the hop. Pure logic, so it is
//! tested (and property-tested) without a network.

use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use url::Url;

/// The limits a request follows redirects under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) follow: bool,
    pub(crate) max: u32,
}

/// One redirect to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hop {
    /// The next URL, resolved against the current one.
    pub(crate) url: Url,
    /// 301–303: the request becomes a body-less GET.
    pub(crate) to_get: bool,
    /// The next URL has another origin: credentials stay behind.
    pub(crate) cross_origin: bool,
}

/// Why a redirect cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedirectError {
    TooMany {
        max: u32,
        url: String,
    },
    BadLocation {
        location: String,
        url: String,
        reason: String,
    },
    BadScheme {
        scheme: String,
        url: String,
    },
}

impl std::fmt::Display for RedirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooMany { max, url } => write!(
                f,
                "Too many redirects - stopped after following {max} (maxRedirects) at {url}"
            ),
            Self::BadLocation {
                location,
                url,
                reason,
            } => write!(
                f,
                "Invalid redirect location '{location}' from {url}: {reason}"
            ),
            Self::BadScheme { scheme, url } => write!(
                f,
                "Refusing to follow redirect from {url} to unsupported scheme '{scheme}'"
            ),
        }
    }
}

/// True for the statuses that redirect: 301, 302, 303, 307, 308.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Decides what to do with a response: `Ok(None)` returns it to the script,
/// `Ok(Some(hop))` follows it. `followed` is how many hops came before.
pub(crate) fn next_hop(
    policy: Policy,
    followed: u32,
    current: &Url,
    status: StatusCode,
    location: Option<&HeaderValue>,
) -> Result<Option<Hop>, RedirectError> {
    if !policy.follow || !is_redirect(status) {
        return Ok(None);
    }
    // A redirect without a usable Location is an ordinary response.
    let Some(location) = location.and_then(|l| l.to_str().ok()) else {
        return Ok(None);
    };
    if followed >= policy.max {
        return Err(RedirectError::TooMany {
            max: policy.max,
            url: current.to_string(),
        });
    }
    let url = current
        .join(location)
        .map_err(|e| RedirectError::BadLocation {
            location: location.to_string(),
            url: current.to_string(),
            reason: e.to_string(),
        })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RedirectError::BadScheme {
            scheme: url.scheme().to_string(),
            url: current.to_string(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(RedirectError::BadLocation {
            location: location.to_string(),
            url: current.to_string(),
            reason: "it has no host".to_string(),
        });
    }
    Ok(Some(Hop {
        to_get: status.as_u16() <= 303,
        cross_origin: url.origin() != current.origin(),
        url,
    }))
}

/// Applies `hop` to the request that is sent next.
pub(crate) fn apply<B>(
    hop: &Hop,
    method: &mut Method,
    body: &mut Option<B>,
    headers: &mut Vec<(HeaderName, HeaderValue)>,
) {
    if hop.to_get {
        *method = Method::GET;
        *body = None;
        headers.retain(|(name, _)| name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH);
    }
    if hop.cross_origin {
        // Credentials are for the origin they were given to.
        headers.retain(|(name, _)| {
            name != header::AUTHORIZATION && name != header::COOKIE && name != header::HOST
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, from: &str, to: &str) -> Result<Option<Hop>, RedirectError> {
        let policy = Policy {
            follow: true,
            max: 10,
        };
        let location = HeaderValue::from_str(to).expect("a header value");
        next_hop(
            policy,
            0,
            &Url::parse(from).expect("a url"),
            StatusCode::from_u16(status).expect("a status"),
            Some(&location),
        )
    }

    #[test]
    fn relative_keeps_origin_and_own_query() {
        let next = hop(302, "http://a:8/x/y?q=1", "../z?r=2")
            .expect("follows")
            .expect("a hop");
        assert_eq!(next.url.as_str(), "http://a:8/z?r=2");
        assert!(next.to_get);
        assert!(!next.cross_origin);
    }

    #[test]
    fn keeps_method_for_307_308_and_drops_credentials_across_origins() {
        let next = hop(307, "http://a/", "https://b/")
            .expect("follows")
            .expect("a hop");
        assert!(!next.to_get);
        assert!(next.cross_origin);
        let mut method = Method::PUT;
        let mut body = Some(1);
        let mut headers = vec![
            (header::AUTHORIZATION, HeaderValue::from_static("x")),
            (header::ACCEPT, HeaderValue::from_static("y")),
        ];
        apply(&next, &mut method, &mut body, &mut headers);
        assert_eq!(method, Method::PUT);
        assert_eq!(body, Some(1));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn refuses_other_schemes_and_stops_at_the_limit() {
        assert!(matches!(
            hop(301, "http://a/", "ftp://b/"),
            Err(RedirectError::BadScheme { .. })
        ));
        let location = HeaderValue::from_static("/next");
        let url = Url::parse("http://a/").expect("a url");
        let policy = Policy {
            follow: true,
            max: 2,
        };
        assert!(matches!(
            next_hop(policy, 2, &url, StatusCode::FOUND, Some(&location)),
            Err(RedirectError::TooMany { max: 2, .. })
        ));
        let no_follow = Policy {
            follow: false,
            max: 2,
        };
        assert_eq!(
            next_hop(no_follow, 0, &url, StatusCode::FOUND, Some(&location)),
            Ok(None)
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn current_url() -> impl Strategy<Value = Url> {
        (
            proptest::sample::select(vec!["http", "https"]),
            proptest::sample::select(vec!["a", "b.example", "127.0.0.1", "[::1]"]),
            proptest::option::of(proptest::sample::select(vec![80u16, 443, 8080])),
            "(/[a-z0-9]{0,4}){0,3}(\\?[a-z=&]{0,6})?",
        )
            .prop_map(|(scheme, host, port, path)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                Url::parse(&format!("{scheme}://{host}{port}{path}")).expect("a url")
            })
    }

    /// Location bytes: anything at all, or something close to a URL.
    fn location() -> impl Strategy<Value = Vec<u8>> {
        let structured = (
            proptest::sample::select(vec![
                "",
                "http:",
                "https:",
                "HTTPS:",
                "ftp:",
                "ws:",
                "data:",
                "file:",
                "javascript:",
                "mailto:",
            ]),
            proptest::sample::select(vec!["", "/", "//", "///", "\\\\", "/\\"]),
            proptest::sample::select(vec![
                "",
                "a",
                "b.example",
                "127.0.0.1",
                "[::1]",
                "a:8080",
                "user:pw@a",
                "%00",
                "[bad",
            ]),
            "[ -~]{0,12}",
        )
            .prop_map(|(s, sl, h, rest)| format!("{s}{sl}{h}{rest}").into_bytes());
        prop_oneof![
            2 => structured,
            1 => proptest::collection::vec(any::<u8>(), 0..32),
        ]
    }

    fn status() -> impl Strategy<Value = StatusCode> {
        prop_oneof![
            3 => proptest::sample::select(vec![301u16, 302, 303, 307, 308]),
            1 => 100u16..=999,
        ]
        .prop_map(|n| StatusCode::from_u16(n).expect("a status"))
    }

    fn header_list() -> impl Strategy<Value = Vec<(HeaderName, HeaderValue)>> {
        proptest::collection::vec(
            proptest::sample::select(vec![
                header::AUTHORIZATION,
                header::COOKIE,
                header::HOST,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::ACCEPT,
                header::USER_AGENT,
                HeaderName::from_static("x-custom"),
            ])
            .prop_map(|name| (name, HeaderValue::from_static("v"))),
            0..8,
        )
    }

    proptest! {
        #[test]
        fn next_hop_follows_only_http_urls_with_a_host(
            follow in any::<bool>(),
            max in 0u32..5,
            followed in 0u32..8,
            current in current_url(),
            status in status(),
            location in proptest::option::of(location()),
        ) {
            let policy = Policy { follow, max };
            // Bytes a peer could not put in a header never reach the policy.
            let location = location.and_then(|l| HeaderValue::from_bytes(&l).ok());
            let usable = location.as_ref().is_some_and(|l| l.to_str().is_ok());
            match next_hop(policy, followed, &current, status, location.as_ref()) {
                Ok(Some(hop)) => {
                    prop_assert!(follow && is_redirect(status) && usable);
                    prop_assert!(followed < max, "followed {} of {}", followed, max);
                    prop_assert!(matches!(hop.url.scheme(), "http" | "https"), "{}", hop.url);
                    prop_assert!(hop.url.host_str().is_some_and(|h| !h.is_empty()), "{}", hop.url);
                    prop_assert_eq!(hop.to_get, (301..=303).contains(&status.as_u16()));
                    prop_assert_eq!(hop.cross_origin, hop.url.origin() != current.origin());
                    let mut method = Method::POST;
                    let mut body = Some(());
                    let mut headers = vec![
                        (header::AUTHORIZATION, HeaderValue::from_static("secret")),
                        (header::COOKIE, HeaderValue::from_static("secret")),
                        (header::HOST, HeaderValue::from_static("a")),
                    ];
                    apply(&hop, &mut method, &mut body, &mut headers);
                    prop_assert_eq!(headers.is_empty(), hop.cross_origin,
                        "credentials stay behind exactly when the origin changes");
                }
                Ok(None) => prop_assert!(!follow || !is_redirect(status) || !usable),
                Err(RedirectError::TooMany { max: m, .. }) => {
                    prop_assert!(follow && is_redirect(status) && usable);
                    prop_assert_eq!(m, max);
                    prop_assert!(followed >= max);
                }
                Err(e @ (RedirectError::BadLocation { .. } | RedirectError::BadScheme { .. })) => {
                    prop_assert!(follow && is_redirect(status) && usable && followed < max);
                    let message = e.to_string();
                    prop_assert!(!message.is_empty());
                }
            }
        }

        #[test]
        fn a_chain_never_exceeds_max(
            max in 0u32..12,
            current in current_url(),
            status in proptest::sample::select(vec![301u16, 302, 303, 307, 308]),
        ) {
            let status = StatusCode::from_u16(status).expect("a status");
            let location = HeaderValue::from_static("/again");
            let policy = Policy { follow: true, max };
            let mut url = current;
            let mut followed = 0;
            loop {
                match next_hop(policy, followed, &url, status, Some(&location)) {
                    Ok(Some(hop)) => {
                        followed += 1;
                        prop_assert!(followed <= max);
                        url = hop.url;
                    }
                    Err(RedirectError::TooMany { .. }) => break,
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(followed, max);
        }

        #[test]
        fn apply_keeps_what_the_hop_allows(
            to_get in any::<bool>(),
            cross_origin in any::<bool>(),
            method in proptest::sample::select(vec![Method::GET, Method::POST, Method::PUT,
                Method::DELETE, Method::PATCH, Method::HEAD]),
            body in proptest::option::of(any::<u8>()),
            headers in header_list(),
        ) {
            let hop = Hop { url: Url::parse("http://a/").expect("a url"), to_get, cross_origin };
            let (mut m, mut b, mut h) = (method.clone(), body, headers.clone());
            apply(&hop, &mut m, &mut b, &mut h);
            let dropped = |name: &HeaderName| {
                (to_get && (name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH))
                    || (cross_origin
                        && (name == header::AUTHORIZATION
                            || name == header::COOKIE
                            || name == header::HOST))
            };
            let kept: Vec<_> = headers.into_iter().filter(|(n, _)| !dropped(n)).collect();
            prop_assert_eq!(h, kept, "the other headers stay, in order");
            if to_get {
                prop_assert_eq!(m, Method::GET);
                prop_assert_eq!(b, None);
            } else {
                prop_assert_eq!(m, method);
                prop_assert_eq!(b, body);
            }
        }
    }
}
