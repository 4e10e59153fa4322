//! The parsers of text a client chooses (`socklab_protocol::client_text`: Origin, Host and
//! `:authority`, `?tag=`, `X-Forwarded-For`) and the PROXY protocol header reader
//! (`proxy_header`): no input panics them, and each answer holds what it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socklab_protocol::client_text::{
    TAG_MAX_CHARS, forwarded_entries, host_without_port, origin_listed, origin_matches_authority,
    origin_matches_host, sanitize_tag, tag_param,
};
use socklab_protocol::proxy_header::{self, V1_MAX, V2_MAX_BODY};

fuzz_target!(|input: &[u8]| {
    // The PROXY reader sees the raw bytes: the header it takes is a bounded prefix.
    if let Ok(header) = proxy_header::take(input) {
        assert!(header.len() <= V1_MAX.max(16 + V2_MAX_BODY));
        assert!(input.starts_with(header));
        let _ = proxy_header::parse(header);
    }
    // The text parsers see the input as text (lossy: a header value is a `&str` by then),
    // split at the first 0xff byte into two strings: an origin and a host/authority.
    let cut = input.iter().position(|&b| b == 0xff).unwrap_or(input.len());
    let (a, b) = input.split_at(cut);
    let origin = String::from_utf8_lossy(a);
    let host = String::from_utf8_lossy(b.get(1..).unwrap_or_default());
    let model = !host.is_empty()
        && ["http://", "https://"]
            .iter()
            .any(|s| origin.to_ascii_lowercase() == format!("{s}{}", host.to_ascii_lowercase()));
    assert_eq!(origin_matches_host(&origin, &host), model);
    let _ = origin_matches_authority(&origin, &host, &[80, 8080]);
    let _ = origin_listed(&origin, &[host.to_string()]);
    assert!(host.starts_with(host_without_port(&host)));
    if let Some(raw) = tag_param(&origin) {
        let tag = sanitize_tag(raw);
        assert!(tag.len() <= TAG_MAX_CHARS);
        assert!(
            tag.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
    assert_eq!(
        forwarded_entries(&origin).count(),
        origin.split(',').count()
    );
});
