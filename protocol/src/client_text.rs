//! Parsers of text a client chooses: the `Origin` and `Host` headers (and WebTransport's
//! `:authority`), the `?tag=` query and `X-Forwarded-For` entries.
//!
//! Every one of them takes any string without panicking: they compare bytes, split on
//! characters and never slice a client's string at a byte offset computed from another string
//! (a multi-byte character would put the offset inside it). Property tests feed them arbitrary
//! Unicode, and `fuzz/fuzz_targets/client_text.rs` arbitrary bytes.

use std::net::{IpAddr, SocketAddr};

/// Longest tag kept, in characters.
pub const TAG_MAX_CHARS: usize = 64;

/// Whether `origin` is `http://host` or `https://host` (`host` as in a `Host` header,
/// `name:port`), ignoring ASCII case. An empty `host` matches nothing.
pub fn origin_matches_host(origin: &str, host: &str) -> bool {
    let (origin, host) = (origin.as_bytes(), host.as_bytes());
    !host.is_empty()
        && ["http://", "https://"].iter().any(|scheme| {
            // Bytes, not `str`: a byte offset may fall inside a character of the client's text.
            origin
                .split_at_checked(scheme.len())
                .is_some_and(|(head, rest)| {
                    head.eq_ignore_ascii_case(scheme.as_bytes()) && rest.eq_ignore_ascii_case(host)
                })
        })
}

/// Whether `origin` is listed with `--allow-origin` (or `*` is); a trailing `/` on a listed
/// origin does not matter.
pub fn origin_listed(origin: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Whether a WebTransport session's `origin` is a page of this server: http(s) with the host
/// of `authority` (the `:authority` the client used, whose port is QUIC's, not HTTP's) and
/// one of the server's HTTP `ports` (port 80 may be left out of the origin).
pub fn origin_matches_authority(origin: &str, authority: &str, ports: &[u16]) -> bool {
    let host = host_without_port(authority);
    !host.is_empty()
        && ports.iter().any(|&port| {
            origin_matches_host(origin, &format!("{host}:{port}"))
                || (port == 80 && origin_matches_host(origin, host))
        })
}

/// `host` of `host:port`, `[v6]:port`, `host` or `[v6]`; anything else whole.
pub fn host_without_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']'))) =>
        {
            host
        }
        _ => authority,
    }
}

/// The raw value of the first `tag=` in a query string (`a=1&tag=x`), not yet sanitised.
pub fn tag_param(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("tag="))
}

/// A tag as it is shown and stored: ASCII letters, digits, `-` and `_` only, at most
/// [`TAG_MAX_CHARS`] of them.
pub fn sanitize_tag(tag: &str) -> String {
    tag.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(TAG_MAX_CHARS)
        .collect()
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:5678`, optionally quoted and padded; the port is 0 when none is given.
/// `None` for anything else (`unknown`, obfuscated identifiers, garbage).
pub fn forwarded_entry(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim().trim_matches('"');
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip = entry.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip.parse().ok()?;
    Some(SocketAddr::new(ip, 0))
}

/// The entries of one `X-Forwarded-For` value, nearest proxy first (right to left), each
/// parsed by [`forwarded_entry`].
pub fn forwarded_entries(value: &str) -> impl Iterator<Item = Option<SocketAddr>> + '_ {
    value.rsplit(',').map(forwarded_entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn origins_match_their_own_host_only() {
        assert!(origin_matches_host("http://lab:8080", "lab:8080"));
        assert!(origin_matches_host("HTTPS://LAB:8080", "lab:8080"));
        assert!(!origin_matches_host("http://lab:8081", "lab:8080"));
        assert!(!origin_matches_host("http://evil", ""));
        assert!(!origin_matches_host("ftp://lab:8080", "lab:8080"));
    }

    #[test]
    fn a_non_ascii_origin_of_the_right_length_is_refused_not_a_panic() {
        // The length matches "http://" + host, but byte 7 is inside the 'é' (issue 13, item 1).
        let origin = "http:/é127.0.0.1:8080";
        assert_eq!(origin.len(), "http://".len() + "127.0.0.1:8080".len() + 1);
        for cut in 0..=origin.len() {
            let host = &"127.0.0.1:8080xxxxxxxxxx"[..cut.min(24)];
            assert!(!origin_matches_host(origin, host));
        }
        assert!(!origin_matches_authority("http:/é12", "127:1", &[8080, 80]));
        assert!(!origin_matches_host("http:/é", "ab"));
        assert!(!origin_matches_host("ééééé", "ab"));
    }

    #[test]
    fn authorities_lose_their_port() {
        assert_eq!(host_without_port("127.0.0.1:4433"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:4433"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("lab"), "lab");
        assert_eq!(host_without_port("::1"), "::1");
        assert!(origin_matches_authority(
            "http://[::1]:8080",
            "[::1]:4433",
            &[8080]
        ));
        assert!(origin_matches_authority("http://lab", "lab:4433", &[80]));
        assert!(!origin_matches_authority("http://lab", "lab:4433", &[8080]));
    }

    #[test]
    fn tags_are_tame() {
        assert_eq!(tag_param("a=1&tag=ab-1_c<script>"), Some("ab-1_c<script>"));
        assert_eq!(tag_param("tagx=1"), None);
        assert_eq!(sanitize_tag("ab-1_c<script>"), "ab-1_cscript");
        assert_eq!(sanitize_tag(&"x".repeat(100)).len(), TAG_MAX_CHARS);
        assert_eq!(sanitize_tag("é😀ab"), "ab");
    }

    #[test]
    fn forwarded_entries_parse_with_and_without_ports() {
        let all: Vec<_> = forwarded_entries(r#"6.6.6.6, "[2001:db8::7]:5555", unknown"#).collect();
        assert_eq!(
            all,
            [
                None,
                Some("[2001:db8::7]:5555".parse().unwrap()),
                Some("6.6.6.6:0".parse().unwrap())
            ]
        );
        assert_eq!(forwarded_entry(" [::1] "), Some("[::1]:0".parse().unwrap()));
    }

    /// Any string, ASCII-heavy (so structure like `http://`, `:` and `[` shows up) with
    /// multi-byte characters mixed in.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "(https?://)?[\\[\\]:0-9a-zé😀/.,\" ]{0,30}",
            "[a-zA-Z0-9é-]{0,10}(:[0-9]{0,6})?",
        ]
    }

    proptest! {
        #[test]
        fn origin_rules_never_panic_and_agree_with_a_char_model(
            origin in text(), host in text(), ports in proptest::collection::vec(any::<u16>(), 0..3),
        ) {
            let model = !host.is_empty() && ["http://", "https://"].iter().any(|s| {
                let o = origin.to_ascii_lowercase();
                o == format!("{s}{}", host.to_ascii_lowercase())
            });
            prop_assert_eq!(origin_matches_host(&origin, &host), model);
            let _ = origin_matches_authority(&origin, &host, &ports);
            let _ = origin_listed(&origin, std::slice::from_ref(&host));
        }

        #[test]
        fn an_origin_always_matches_its_own_host(host in text()) {
            prop_assume!(!host.is_empty());
            let (plain, secure) = (format!("http://{host}"), format!("HTTPS://{host}"));
            prop_assert!(origin_matches_host(&plain, &host));
            prop_assert!(origin_matches_host(&secure, &host));
        }

        #[test]
        fn hosts_are_a_prefix_of_their_authority(authority in text()) {
            prop_assert!(authority.starts_with(host_without_port(&authority)));
        }

        #[test]
        fn tags_are_short_and_tame(query in text()) {
            if let Some(raw) = tag_param(&query) {
                prop_assert!(query.contains(raw));
                let tag = sanitize_tag(raw);
                prop_assert!(tag.len() <= TAG_MAX_CHARS);
                prop_assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }

        #[test]
        fn forwarded_values_never_panic(value in text()) {
            prop_assert_eq!(forwarded_entries(&value).count(), value.split(',').count());
        }
    }
}
