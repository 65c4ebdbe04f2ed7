//! Every ONVIF answer parser on arbitrary bytes: the XML tree reader, SOAP
//! envelope and fault handling, Device (information, capabilities,
//! services, scopes, clock), Media/Media2 (profiles, stream and snapshot
//! URIs), Events (CreatePullPoint, PullMessages) and WS-Discovery datagrams
//! (ProbeMatch, Hello, Bye).
//!
//! Beyond "no panic": a parsed tree written back out parses to the same
//! tree; parsed trees respect the depth and element limits; whatever the
//! parsers return obeys their documented shape and the discovery limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::onvif::discovery::{
    self, Body, EndpointDescription, ParseError, MAX_DATAGRAM, MAX_LIST_ITEMS, MAX_MATCHES,
    MAX_TEXT,
};
use porchlight::onvif::http::Response;
use porchlight::onvif::xml::{self, Element, MAX_DEPTH, MAX_ELEMENTS};
use porchlight::onvif::{device, events, media, soap};

fuzz_target!(|data: &[u8]| {
    check_discovery(data);
    for status in [200, 500] {
        check_http_answer(data, status);
    }
    let Ok(doc) = xml::parse(data) else { return };
    let (depth, count) = shape(&doc);
    assert!(depth <= MAX_DEPTH, "tree {depth} deep");
    assert!(count <= MAX_ELEMENTS, "{count} elements");
    check_round_trip(&doc);
    if let Ok(body) = soap::body_content(&doc) {
        check_operations(body);
    }
    // Faults are read from wherever the Fault element sits.
    check_operations(&doc);
});

/// The SOAP layer agrees with the tree reader: a 2xx answer it accepts is
/// exactly the parsed document.
fn check_http_answer(data: &[u8], status: u16) {
    let response = Response {
        status,
        reason: String::new(),
        headers: vec![],
        body: data.to_vec(),
    };
    if let Ok(envelope) = soap::check_response(&response) {
        assert_eq!(status, 200, "a non-2xx answer was taken as success");
        assert_eq!(Ok(envelope), xml::parse(data));
    }
}

fn check_operations(body: &Element) {
    if let Ok(info) = device::parse_device_information(body) {
        for field in [&info.manufacturer, &info.model, &info.serial_number] {
            assert_eq!(field.trim(), field.as_str());
        }
    }
    if let Ok(services) = device::parse_services(body) {
        for s in &services {
            assert!(!s.namespace.is_empty() && !s.xaddr.is_empty(), "{s:?}");
        }
        let _ = device::ServiceAddresses::from_services(&services);
    }
    let _ = device::parse_capabilities(body);
    if let Ok(Some(name)) = device::parse_scopes_name(body) {
        assert!(!name.is_empty());
    }
    let _ = device::parse_system_date_and_time(body);
    for profiles in [media::parse_profiles(body), media::parse_profiles2(body)]
        .into_iter()
        .flatten()
    {
        assert!(profiles.len() <= MAX_ELEMENTS);
    }
    for op in ["GetStreamUri", "GetSnapshotUri"] {
        if let Ok(uri) = media::parse_uri(body, op) {
            assert!(!uri.is_empty() && uri.trim() == uri, "{uri:?}");
        }
    }
    let _ = events::parse_create_pull_point(body);
    if let Ok(pulled) = events::parse_pull_messages(body) {
        for n in &pulled.notifications {
            if let Some(event) = n.camera_event() {
                let _ = event.kind.as_str();
            }
        }
    }
    let fault = soap::Fault::from_element(body);
    assert!(
        fault.subcodes.len() <= 17,
        "{} subcodes",
        fault.subcodes.len()
    );
    let _ = fault.into_error();
}

fn check_discovery(data: &[u8]) {
    match discovery::parse(data) {
        Err(ParseError::TooLarge(n)) => assert!(n > MAX_DATAGRAM && n == data.len()),
        Err(_) => assert!(data.len() <= MAX_DATAGRAM),
        Ok(message) => {
            assert!(data.len() <= MAX_DATAGRAM);
            for text in [&message.action, &message.message_id, &message.relates_to]
                .into_iter()
                .flatten()
            {
                assert!(text.len() <= MAX_TEXT);
            }
            match &message.body {
                Body::ProbeMatches(matches) | Body::ResolveMatches(matches) => {
                    assert!(matches.len() <= MAX_MATCHES, "{} matches", matches.len());
                    matches.iter().for_each(check_endpoint);
                }
                Body::Hello(d) => check_endpoint(d),
                Body::Bye { endpoint } | Body::Resolve { endpoint } => {
                    assert!(endpoint.len() <= MAX_TEXT)
                }
                Body::Probe { types } => assert!(types.len() <= MAX_LIST_ITEMS),
                Body::Other => {}
            }
        }
    }
}

fn check_endpoint(d: &EndpointDescription) {
    assert!(d.endpoint.len() <= MAX_TEXT);
    for list in [&d.types, &d.scopes, &d.xaddrs] {
        assert!(list.len() <= MAX_LIST_ITEMS, "{} list items", list.len());
        assert!(list
            .iter()
            .all(|s| !s.is_empty() && !s.contains(char::is_whitespace)));
    }
    let _ = discovery::parse_scopes(&d.scopes);
}

/// (depth, element count) of a tree.
fn shape(e: &Element) -> (usize, usize) {
    e.children
        .iter()
        .map(shape)
        .fold((1, 1), |(d, n), (cd, cn)| (d.max(cd + 1), n + cn))
}

/// Writes the tree back out and parses it again: nothing may be lost.
fn check_round_trip(doc: &Element) {
    let mut text = String::new();
    write(doc, &mut text);
    let again = xml::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("written-back tree does not parse ({e}):\n{text}"));
    assert_eq!(
        comparable(doc),
        comparable(&again),
        "written back as:\n{text}"
    );
}

/// The prefix a QName-valued text is resolved with, as the reader decides it.
fn text_prefix(text: &str) -> Option<&str> {
    let (prefix, _) = text.split_once(':')?;
    (!prefix.is_empty() && !prefix.contains(['/', ' '])).then_some(prefix)
}

/// A prefix this writer can declare in an attribute name.
fn declarable(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `text_namespace` only where the writer can reproduce the declaration.
fn comparable(e: &Element) -> Element {
    let mut e = e.clone();
    if !text_prefix(&e.text).is_some_and(declarable) {
        e.text_namespace = None;
    }
    e.children = e.children.iter().map(comparable).collect();
    e
}

fn escape(text: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Line-end and attribute-value normalisation would eat these.
            '\r' => out.push_str("&#13;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Each element under its own prefix bound to its namespace (or unbound),
/// attributes under distinct undeclared prefixes (lookups go by local name),
/// then the text, then the children.
fn write(e: &Element, out: &mut String) {
    let text_ns = text_prefix(&e.text).filter(|p| declarable(p));
    let prefix = if text_ns == Some("e") { "f" } else { "e" };
    let name = format!("{prefix}:{}", e.name);
    out.push('<');
    out.push_str(&name);
    let ns = e.namespace.as_deref().unwrap_or("");
    out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape(ns, true)));
    if let Some(p) = text_ns {
        let uri = e.text_namespace.as_deref().unwrap_or("");
        out.push_str(&format!(" xmlns:{p}=\"{}\"", escape(uri, true)));
    }
    for (i, (key, value)) in e.attributes.iter().enumerate() {
        out.push_str(&format!(" a{i}:{key}=\"{}\"", escape(value, true)));
    }
    out.push('>');
    out.push_str(&escape(&e.text, false));
    for child in &e.children {
        write(child, out);
    }
    out.push_str(&format!("</{name}>"));
}
