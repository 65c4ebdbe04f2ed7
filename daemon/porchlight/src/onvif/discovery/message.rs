//! WS-Discovery messages: building Probe, parsing what cameras send back.
//!
//! Parsing matches elements by local name only: cameras put the discovery
//! elements under `d:`, `wsd:`, `wsdd:`, `dn:` or a default namespace, and
//! some use the 2005/04 draft namespaces while others use the 2009 OASIS
//! ones. Input is untrusted and bounded: over [`MAX_DATAGRAM`] bytes, deeper
//! than [`MAX_DEPTH`], more than [`MAX_ELEMENTS`] elements or [`MAX_MATCHES`]
//! matches, and the datagram is refused. Nothing here panics on any input.

use std::fmt::Write as _;

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

/// Datagrams larger than this are dropped unparsed.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most elements (start or empty tags) accepted in one message.
pub const MAX_ELEMENTS: usize = 4096;
/// Most ProbeMatch/ResolveMatch entries kept from one message.
pub const MAX_MATCHES: usize = 64;
/// Most entries kept from one space-separated list (Types, Scopes, XAddrs).
pub const MAX_LIST_ITEMS: usize = 256;
/// Longest text accepted for one element.
pub const MAX_TEXT: usize = 16 * 1024;

pub(crate) const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
pub(crate) const NS_WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
pub(crate) const NS_WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
pub(crate) const NS_DN: &str = "http://www.onvif.org/ver10/network/wsdl";
pub(crate) const NS_TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
/// `To` of multicast messages in the 2005/04 WS-Discovery that ONVIF uses.
pub(crate) const TO_DISCOVERY: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";
pub(crate) const ACTION_PROBE: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
pub(crate) const ANONYMOUS: &str =
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Why a datagram was not understood. Callers log it at debug and move on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("datagram of {0} bytes is over the 64 KiB limit")]
    TooLarge(usize),
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("message over a parser limit: {0}")]
    Limit(&'static str),
    #[error("not a SOAP envelope")]
    NotSoap,
    #[error("unknown entity &{0};")]
    Entity(String),
}

/// One endpoint as described by ProbeMatch, ResolveMatch or Hello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointDescription {
    /// `EndpointReference/Address`, usually `urn:uuid:...`.
    pub endpoint: String,
    /// QNames as sent, e.g. `dn:NetworkVideoTransmitter`.
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    pub xaddrs: Vec<String>,
    /// 0 when absent or not a number.
    pub metadata_version: u32,
}

/// What the body of a WS-Discovery message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    ProbeMatches(Vec<EndpointDescription>),
    ResolveMatches(Vec<EndpointDescription>),
    Hello(EndpointDescription),
    Bye {
        endpoint: String,
    },
    Probe {
        types: Vec<String>,
    },
    Resolve {
        endpoint: String,
    },
    /// Some other (or empty) body.
    Other,
}

/// A parsed WS-Discovery message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub relates_to: Option<String>,
    pub body: Body,
}

/// Which field of an endpoint description a text node belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Address,
    Types,
    Scopes,
    XAddrs,
    MetadataVersion,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    ProbeMatches,
    ResolveMatches,
    Hello,
    Bye,
    Probe,
    Resolve,
    Other,
}

/// Parses one datagram. Never panics; anything odd is an error.
pub fn parse(datagram: &[u8]) -> Result<Message, ParseError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(ParseError::TooLarge(datagram.len()));
    }
    let mut reader = Reader::from_reader(datagram);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;

    // Local names of the open elements, outermost first.
    let mut stack: Vec<Vec<u8>> = Vec::with_capacity(16);
    let mut elements = 0usize;
    let mut text = String::new();
    let mut saw_envelope = false;

    let mut action = None;
    let mut message_id = None;
    let mut relates_to = None;
    let mut body_kind: Option<BodyKind> = None;
    let mut entries: Vec<EndpointDescription> = Vec::new();
    let mut current: Option<EndpointDescription> = None;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| ParseError::Xml(e.to_string()))?;
        match event {
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(ParseError::Limit("element count"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::Limit("nesting depth"));
                }
                let local = start.local_name().as_ref().as_bytes().to_vec();
                text.clear();
                on_open(
                    &stack,
                    &local,
                    &mut saw_envelope,
                    &mut body_kind,
                    &mut current,
                    &mut entries,
                )?;
                stack.push(local);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(ParseError::Limit("element count"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::Limit("nesting depth"));
                }
                let local = start.local_name().as_ref().as_bytes().to_vec();
                on_open(
                    &stack,
                    &local,
                    &mut saw_envelope,
                    &mut body_kind,
                    &mut current,
                    &mut entries,
                )?;
                // An empty element has no text and closes at once.
                stack.push(local);
                text.clear();
                on_close(
                    &stack,
                    "",
                    &mut action,
                    &mut message_id,
                    &mut relates_to,
                    &mut current,
                    &mut entries,
                );
                stack.pop();
            }
            Event::End(_) => {
                on_close(
                    &stack,
                    text.trim(),
                    &mut action,
                    &mut message_id,
                    &mut relates_to,
                    &mut current,
                    &mut entries,
                );
                text.clear();
                stack.pop();
            }
            Event::Text(t) => {
                let decoded = t.xml10_content();
                push_text(&mut text, &decoded)?;
            }
            Event::CData(c) => {
                let decoded = c.xml10_content();
                push_text(&mut text, &decoded)?;
            }
            Event::GeneralRef(r) => {
                let resolved = resolve_ref(&r)?;
                push_text(&mut text, &resolved)?;
            }
            Event::DocType(_) => {
                // No DTDs: no entity expansion games.
                return Err(ParseError::Xml("DOCTYPE not allowed".into()));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Xml("truncated: unclosed elements".into()));
    }
    if !saw_envelope {
        return Err(ParseError::NotSoap);
    }
    let body = match body_kind {
        None | Some(BodyKind::Other) => Body::Other,
        Some(BodyKind::ProbeMatches) => Body::ProbeMatches(entries),
        Some(BodyKind::ResolveMatches) => Body::ResolveMatches(entries),
        Some(BodyKind::Hello) => match entries.into_iter().next() {
            Some(entry) => Body::Hello(entry),
            None => Body::Other,
        },
        Some(BodyKind::Bye) => match entries.into_iter().next() {
            Some(entry) => Body::Bye {
                endpoint: entry.endpoint,
            },
            None => Body::Other,
        },
        Some(BodyKind::Probe) => Body::Probe {
            types: entries
                .into_iter()
                .next()
                .map(|e| e.types)
                .unwrap_or_default(),
        },
        Some(BodyKind::Resolve) => Body::Resolve {
            endpoint: entries
                .into_iter()
                .next()
                .map(|e| e.endpoint)
                .unwrap_or_default(),
        },
    };
    Ok(Message {
        action,
        message_id,
        relates_to,
        body,
    })
}

fn push_text(text: &mut String, more: &str) -> Result<(), ParseError> {
    if text.len() + more.len() > MAX_TEXT {
        return Err(ParseError::Limit("text length"));
    }
    text.push_str(more);
    Ok(())
}

fn resolve_ref(r: &BytesRef<'_>) -> Result<String, ParseError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c.to_string()),
            _ => Err(ParseError::Entity(r.xml10_content().into_owned())),
        };
    }
    let name = r.xml10_content();
    let s = match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => return Err(ParseError::Entity(other.to_string())),
    };
    Ok(s.to_string())
}

/// Bookkeeping when an element opens; `stack` does not include it yet.
fn on_open(
    stack: &[Vec<u8>],
    local: &[u8],
    saw_envelope: &mut bool,
    body_kind: &mut Option<BodyKind>,
    current: &mut Option<EndpointDescription>,
    entries: &mut [EndpointDescription],
) -> Result<(), ParseError> {
    let depth = stack.len();
    if depth == 0 {
        if local != b"Envelope" {
            return Err(ParseError::NotSoap);
        }
        *saw_envelope = true;
        return Ok(());
    }
    // Envelope / Body / <kind>
    if depth == 2 && stack[1] == b"Body" && body_kind.is_none() {
        let kind = match local {
            b"ProbeMatches" => BodyKind::ProbeMatches,
            b"ResolveMatches" => BodyKind::ResolveMatches,
            b"Hello" => BodyKind::Hello,
            b"Bye" => BodyKind::Bye,
            b"Probe" => BodyKind::Probe,
            b"Resolve" => BodyKind::Resolve,
            _ => BodyKind::Other,
        };
        *body_kind = Some(kind);
        if matches!(
            kind,
            BodyKind::Hello | BodyKind::Bye | BodyKind::Probe | BodyKind::Resolve
        ) {
            *current = Some(EndpointDescription::default());
        }
        return Ok(());
    }
    // Envelope / Body / (Probe|Resolve)Matches / (Probe|Resolve)Match
    if depth == 3
        && stack[1] == b"Body"
        && matches!(
            (*body_kind, local),
            (Some(BodyKind::ProbeMatches), b"ProbeMatch")
                | (Some(BodyKind::ResolveMatches), b"ResolveMatch")
        )
    {
        if entries.len() >= MAX_MATCHES {
            *current = None;
        } else {
            *current = Some(EndpointDescription::default());
        }
    }
    Ok(())
}

/// Bookkeeping when an element closes; `stack` still ends with it.
#[allow(clippy::too_many_arguments)]
fn on_close(
    stack: &[Vec<u8>],
    text: &str,
    action: &mut Option<String>,
    message_id: &mut Option<String>,
    relates_to: &mut Option<String>,
    current: &mut Option<EndpointDescription>,
    entries: &mut Vec<EndpointDescription>,
) {
    let depth = stack.len();
    let Some(local) = stack.last() else { return };
    // Envelope / Header / X
    if depth == 3 && stack[1] == b"Header" {
        let slot = match local.as_slice() {
            b"Action" => action,
            b"MessageID" => message_id,
            b"RelatesTo" => relates_to,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(text.to_string());
        }
        return;
    }
    if depth < 3 || stack[1] != b"Body" {
        return;
    }
    // The element that holds one endpoint description: depth 3 for
    // Hello/Bye/Probe/Resolve, depth 4 for a Probe/ResolveMatch.
    let holder_depth = if matches!(stack[2].as_slice(), b"ProbeMatches" | b"ResolveMatches") {
        4
    } else {
        3
    };
    if depth == holder_depth {
        if let Some(done) = current.take() {
            entries.push(done);
        }
        return;
    }
    let Some(entry) = current.as_mut() else {
        return;
    };
    let Some(below) = depth.checked_sub(holder_depth) else {
        return;
    };
    let field = match (below, local.as_slice()) {
        (1, b"Types") => Field::Types,
        (1, b"Scopes") => Field::Scopes,
        (1, b"XAddrs") => Field::XAddrs,
        (1, b"MetadataVersion") => Field::MetadataVersion,
        (2, b"Address") if stack[depth - 2] == b"EndpointReference" => Field::Address,
        _ => return,
    };
    match field {
        Field::Address => entry.endpoint = text.to_string(),
        Field::Types => entry.types = split_list(text),
        Field::Scopes => entry.scopes = split_list(text),
        Field::XAddrs => entry.xaddrs = split_list(text),
        Field::MetadataVersion => entry.metadata_version = text.parse().unwrap_or(0),
    }
}

/// An `xs:list` of URIs or QNames. An item holding a control character or
/// other whitespace (a vertical tab, a no-break space) is not valid XML and
/// never a usable address: it is dropped, not passed on to be dialled.
fn split_list(text: &str) -> Vec<String> {
    text.split_ascii_whitespace()
        .filter(|item| !item.contains(|c: char| c.is_control() || c.is_whitespace()))
        .take(MAX_LIST_ITEMS)
        .map(str::to_string)
        .collect()
}

/// ONVIF scope values we read (`onvif://www.onvif.org/<key>/<value>`),
/// percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnvifScopes {
    pub name: Option<String>,
    pub hardware: Option<String>,
    pub location: Option<String>,
    /// Every `type/...` scope (e.g. `video_encoder`, `ptz`).
    pub types: Vec<String>,
    /// Every `Profile/...` scope (e.g. `Streaming`, `T`).
    pub profiles: Vec<String>,
}

const ONVIF_SCOPE_PREFIX: &str = "onvif://www.onvif.org/";

/// Reads the ONVIF scopes out of a scope list. Keys are case-insensitive
/// (cameras send `Name/`, `name/`, `Profile/`, `profile/`); empty values
/// (`location/` with nothing after it) count as absent. The first of each
/// single-valued key wins.
pub fn parse_scopes<S: AsRef<str>>(scopes: &[S]) -> OnvifScopes {
    let mut out = OnvifScopes::default();
    for scope in scopes {
        let scope = scope.as_ref();
        let Some(rest) = scope
            .get(..ONVIF_SCOPE_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(ONVIF_SCOPE_PREFIX))
            .map(|_| &scope[ONVIF_SCOPE_PREFIX.len()..])
        else {
            continue;
        };
        let Some((key, value)) = rest.split_once('/') else {
            continue;
        };
        let value = percent_decode(value);
        if value.is_empty() {
            continue;
        }
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "name" => {
                out.name.get_or_insert(value);
            }
            "hardware" => {
                out.hardware.get_or_insert(value);
            }
            "location" => {
                out.location.get_or_insert(value);
            }
            "type" => out.types.push(value),
            "profile" => out.profiles.push(value),
            _ => {}
        }
    }
    out
}

/// `%XX` decoding; invalid escapes are kept as they are, invalid UTF-8 is
/// replaced.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True if a `Types` QName has the given local part (prefix-agnostic).
pub fn type_local_name(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, local)| local)
}

/// A fresh `urn:uuid:` (version 4) for MessageIDs.
pub fn new_message_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(45);
    s.push_str("urn:uuid:");
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Escapes text for element content.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A Probe for the given types (QNames with the `dn:`/`tds:` prefixes
/// declared on the envelope), SOAP 1.2, WS-Discovery 2005/04 as ONVIF
/// requires.
pub fn build_probe(message_id: &str, types: &[String]) -> String {
    let types = types
        .iter()
        .map(|t| xml_escape(t))
        .collect::<Vec<_>>()
        .join(" ");
    let types_element = if types.is_empty() {
        String::new()
    } else {
        format!("<d:Types>{types}</d:Types>")
    };
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="{soap}" xmlns:a="{wsa}" xmlns:d="{wsd}" xmlns:dn="{dn}" xmlns:tds="{tds}">"#,
            r#"<s:Header>"#,
            r#"<a:Action s:mustUnderstand="1">{action}</a:Action>"#,
            r#"<a:MessageID>{id}</a:MessageID>"#,
            r#"<a:ReplyTo><a:Address>{anon}</a:Address></a:ReplyTo>"#,
            r#"<a:To s:mustUnderstand="1">{to}</a:To>"#,
            r#"</s:Header>"#,
            r#"<s:Body><d:Probe>{types}</d:Probe></s:Body>"#,
            r#"</s:Envelope>"#
        ),
        soap = NS_SOAP,
        wsa = NS_WSA,
        wsd = NS_WSD,
        dn = NS_DN,
        tds = NS_TDS,
        action = ACTION_PROBE,
        id = xml_escape(message_id),
        anon = ANONYMOUS,
        to = TO_DISCOVERY,
        types = types_element,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATCH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<env:Header><wsa:MessageID>urn:uuid:1</wsa:MessageID><wsa:RelatesTo>urn:uuid:ours</wsa:RelatesTo>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></env:Header>
<env:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:cam-1</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
<d:Scopes>onvif://www.onvif.org/name/Front%20Door onvif://www.onvif.org/hardware/X&amp;Y onvif://www.onvif.org/location/</d:Scopes>
<d:XAddrs>http://10.0.0.2/onvif/device_service http://[fe80::1]/onvif/device_service</d:XAddrs>
<d:MetadataVersion>7</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"#;

    #[test]
    fn parses_a_probe_match() {
        let m = parse(MATCH.as_bytes()).unwrap();
        assert_eq!(m.relates_to.as_deref(), Some("urn:uuid:ours"));
        assert_eq!(m.message_id.as_deref(), Some("urn:uuid:1"));
        let Body::ProbeMatches(matches) = m.body else {
            panic!("{:?}", m.body)
        };
        assert_eq!(matches.len(), 1);
        let d = &matches[0];
        assert_eq!(d.endpoint, "urn:uuid:cam-1");
        assert_eq!(d.types, ["dn:NetworkVideoTransmitter"]);
        assert_eq!(d.xaddrs.len(), 2);
        assert_eq!(d.metadata_version, 7);
        let s = parse_scopes(&d.scopes);
        assert_eq!(s.name.as_deref(), Some("Front Door"));
        assert_eq!(s.hardware.as_deref(), Some("X&Y"));
        assert_eq!(s.location, None);
    }

    /// Found by the long fuzz run: a vertical tab is not ASCII whitespace
    /// to the splitter, so `SERVI\x0bCE_URI` came through as an address.
    #[test]
    fn list_items_with_control_characters_are_dropped() {
        let xml = MATCH.replace(
            "http://[fe80::1]/onvif/device_service",
            "http://10.0.0.3/\u{b}x http://10.0.0.4/\u{a0}y http://10.0.0.5/ok",
        );
        let m = parse(xml.as_bytes()).unwrap();
        let Body::ProbeMatches(matches) = m.body else {
            panic!("{:?}", m.body)
        };
        assert_eq!(
            matches[0].xaddrs,
            ["http://10.0.0.2/onvif/device_service", "http://10.0.0.5/ok"]
        );
    }

    #[test]
    fn no_prefix_and_default_namespace() {
        let xml = r#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><RelatesTo xmlns="x">r</RelatesTo></Header><Body><Hello xmlns="y"><EndpointReference><Address>urn:uuid:h</Address></EndpointReference><XAddrs/><MetadataVersion>2</MetadataVersion></Hello></Body></Envelope>"#;
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.relates_to.as_deref(), Some("r"));
        assert_eq!(
            m.body,
            Body::Hello(EndpointDescription {
                endpoint: "urn:uuid:h".into(),
                metadata_version: 2,
                ..Default::default()
            })
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<a>").is_err());
        assert!(parse(b"<Envelope><Body>").is_err());
        assert!(parse(b"<x/>").is_err());
        assert!(matches!(
            parse(&vec![b' '; MAX_DATAGRAM + 1]),
            Err(ParseError::TooLarge(_))
        ));
        let deep = format!(
            "<Envelope>{}{}</Envelope>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        assert!(matches!(parse(deep.as_bytes()), Err(ParseError::Limit(_))));
        let doctype = r#"<!DOCTYPE e [<!ENTITY x "y">]><Envelope>&x;</Envelope>"#;
        assert!(parse(doctype.as_bytes()).is_err());
        // Truncated ProbeMatch.
        assert!(parse(&MATCH.as_bytes()[..MATCH.len() / 2]).is_err());
    }

    #[test]
    fn many_matches_are_capped() {
        let one = "<d:ProbeMatch><a:EndpointReference><a:Address>e</a:Address></a:EndpointReference></d:ProbeMatch>";
        let xml = format!(
            "<s:Envelope><s:Body><d:ProbeMatches>{}</d:ProbeMatches></s:Body></s:Envelope>",
            one.repeat(200)
        );
        let m = parse(xml.as_bytes()).unwrap();
        let Body::ProbeMatches(v) = m.body else {
            panic!()
        };
        assert_eq!(v.len(), MAX_MATCHES);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn scopes_are_case_insensitive_and_first_wins() {
        let s = parse_scopes(&[
            "onvif://www.onvif.org/Name/IPCAM",
            "onvif://www.onvif.org/name/Other",
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/Profile/Streaming",
            "http://example.com/name/x",
            "onvif://www.onvif.org/location/country/china",
        ]);
        assert_eq!(s.name.as_deref(), Some("IPCAM"));
        assert_eq!(s.types, ["video_encoder"]);
        assert_eq!(s.profiles, ["Streaming"]);
        assert_eq!(s.location.as_deref(), Some("country/china"));
    }

    #[test]
    fn probe_round_trips_through_our_parser() {
        let id = new_message_id();
        assert!(id.starts_with("urn:uuid:") && id.len() == 45, "{id}");
        let xml = build_probe(
            &id,
            &["dn:NetworkVideoTransmitter".into(), "tds:Device".into()],
        );
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(m.action.as_deref(), Some(ACTION_PROBE));
        assert_eq!(
            m.body,
            Body::Probe {
                types: vec!["dn:NetworkVideoTransmitter".into(), "tds:Device".into()]
            }
        );
        assert_eq!(
            type_local_name("dn:NetworkVideoTransmitter"),
            "NetworkVideoTransmitter"
        );
    }

    #[test]
    fn fuzzed_datagrams_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let seeds = [
            MATCH.as_bytes().to_vec(),
            build_probe("urn:uuid:x", &[]).into_bytes(),
        ];
        let alphabet = b"<>/:=\"'&;#x %!?[]-AaZz09 \n";
        for i in 0..5000 {
            let mut d = seeds[i % seeds.len()].clone();
            match i % 4 {
                0 => {
                    // Random bytes.
                    let n = rng.random_range(0..512);
                    d = (0..n).map(|_| rng.random()).collect();
                }
                1 => {
                    // Truncate.
                    let cut = rng.random_range(0..d.len());
                    d.truncate(cut);
                }
                _ => {
                    // Mutate a few bytes with XML-ish characters or insert some.
                    for _ in 0..rng.random_range(1..8) {
                        let at = rng.random_range(0..d.len());
                        let c = alphabet[rng.random_range(0..alphabet.len())];
                        if rng.random_bool(0.5) {
                            d[at] = c;
                        } else {
                            d.insert(at, c);
                        }
                    }
                }
            }
            let _ = parse(&d);
        }
    }
}
