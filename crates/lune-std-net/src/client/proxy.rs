//! `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (either case) for `net.request`
//! (and `net.sse.connect` through it) and `net.socket` (`wss` as `https`).

use url::Url;

/// The proxy (host, port) to use for `url`, if the environment names one.
/// A variable that is set but unusable is an error naming it: sending the
/// traffic direct instead would silently bypass the proxy.
pub(super) fn for_url(url: &Url) -> Result<Option<(String, u16)>, String> {
    let names: &[&str] = match url.scheme() {
        "https" | "wss" => &["https_proxy", "HTTPS_PROXY"],
        _ => &["http_proxy", "HTTP_PROXY"],
    };
    let Some((name, proxy)) = names.iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    }) else {
        return Ok(None);
    };
    let no_proxy = std::env::var("no_proxy")
        .or_else(|_| std::env::var("NO_PROXY"))
        .unwrap_or_default();
    if bypasses(&no_proxy, url.host_str().unwrap_or_default()) {
        return Ok(None);
    }
    parse_proxy(&proxy)
        .map(Some)
        .map_err(|reason| format!("Invalid proxy in {name} '{proxy}' - {reason}"))
}

fn parse_proxy(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if url.scheme() != "http" {
        return Err(format!(
            "unsupported proxy scheme '{}', expected http",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("it has no host")?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    Ok((host, port))
}

/// True when `host` matches an entry of a `NO_PROXY` list: `*`, an exact
/// host, or a domain suffix (`example.com` and `.example.com` both match
/// `api.example.com`).
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = crate::rt::connect::bare(host).to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.split(':').next().unwrap_or_default().to_string();
            let domain = entry.trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        assert!(bypasses("*", "anything"));
        assert!(bypasses("localhost, example.com", "api.example.com"));
        assert!(bypasses(".example.com", "example.com"));
        assert!(bypasses("127.0.0.1:8080", "127.0.0.1"));
        assert!(!bypasses("example.com", "notexample.com"));
        assert!(!bypasses("", "example.com"));
    }

    #[test]
    fn proxy_addresses() {
        assert_eq!(parse_proxy("http://p:3128"), Ok(("p".into(), 3128)));
        assert_eq!(parse_proxy("p:8080"), Ok(("p".into(), 8080)));
        assert_eq!(parse_proxy("http://p"), Ok(("p".into(), 80)));
        assert!(parse_proxy("http://p:99999").is_err());
        assert!(parse_proxy("socks5://p:1080").is_err());
        assert!(parse_proxy("http://").is_err());
    }
}
