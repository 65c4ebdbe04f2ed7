//! A tiny read-only XML tree on quick-xml, for SOAP answers from cameras.
//!
//! Cameras use any prefixes (`tt:`, `trt:`, `ns0:`, a default namespace, or
//! prefixes they forgot to declare), so lookups go by local name; the
//! namespace URI is kept where the document declares it, for the few places
//! that care (SOAP faults, service namespaces). Parsing is bounded in depth
//! and element count and returns an error, never a panic, on any input.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Deepest nesting accepted (real answers stay under 20).
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document (a big GetProfiles has ~5,000).
pub const MAX_ELEMENTS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("not UTF-8 text (byte {0})")]
    NotUtf8(usize),
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("no root element")]
    Empty,
    #[error("truncated: <{0}> is never closed")]
    Truncated(String),
    #[error("nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("DOCTYPE declarations are not accepted")]
    DocType,
}

/// One element: its local name, namespace (if declared), attributes by local
/// name, children in order and its own text (concatenated, trimmed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub namespace: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    /// When `text` is a prefixed QName (`ter:NotAuthorized`), the namespace
    /// its prefix is bound to at this element.
    pub text_namespace: Option<String>,
}

impl Element {
    /// The first child with this local name, whatever its prefix.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of local names from this element.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The trimmed text at `path`, if present and not empty.
    pub fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names)
            .map(|e| e.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The first descendant (depth first, self included) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The local part of a QName-valued text (`ter:NotAuthorized` → `NotAuthorized`).
    pub fn text_local(&self) -> &str {
        local_part(&self.text)
    }
}

/// `p:name` → `name`; `name` → `name`.
pub fn local_part(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError::NotUtf8(e.valid_up_to()))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;

    // Open elements and, per level, the prefixes they declare.
    let mut stack: Vec<Element> = Vec::new();
    let mut scopes: Vec<Vec<(String, String)>> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;

    let malformed = |reader: &Reader<&[u8]>, message: String| XmlError::Malformed {
        position: reader.buffer_position(),
        message,
    };

    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(&reader, "content after the root element".into()));
            }
            Event::Start(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let (element, scope) = open(&start, &scopes).map_err(|m| malformed(&reader, m))?;
                stack.push(element);
                scopes.push(scope);
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let (element, _) = open(&start, &scopes).map_err(|m| malformed(&reader, m))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(mut element) = stack.pop() else {
                    return Err(malformed(&reader, "unexpected end tag".into()));
                };
                let trimmed = element.text.trim();
                if trimmed.len() != element.text.len() {
                    element.text = trimmed.to_string();
                }
                if let Some((prefix, _)) = element.text.split_once(':') {
                    if !prefix.is_empty() && !prefix.contains(['/', ' ']) {
                        element.text_namespace = lookup(&scopes, Some(prefix));
                    }
                }
                scopes.pop();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err(malformed(&reader, "text outside the root element".into()));
                }
            }
            Event::CData(c) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => return Err(malformed(&reader, "bad character reference".into())),
                    }
                } else {
                    let name = r.xml10_content();
                    match resolve_predefined_entity(&name) {
                        Some(s) => s.to_string(),
                        None => return Err(malformed(&reader, format!("unknown entity &{name};"))),
                    }
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError::Truncated(open.name.clone()));
    }
    root.ok_or(XmlError::Empty)
}

/// An XML name, optionally `prefix:local`. The reader is lenient about
/// names (`<r =x="1">` reads as an attribute called `=x`); a camera answer
/// like that is broken, and is refused with the name rather than read.
fn is_qname(qname: &str) -> bool {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{b7}'))
    }
    match qname.split_once(':') {
        Some((prefix, local)) => is_name(prefix) && is_name(local),
        None => is_name(qname),
    }
}

/// Builds an element from a start tag; returns it with the prefixes it declares.
fn open(
    start: &BytesStart<'_>,
    scopes: &[Vec<(String, String)>],
) -> Result<(Element, Vec<(String, String)>), String> {
    let mut scope = Vec::new();
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key: &str = attr.key.as_ref();
        if !is_qname(key) {
            return Err(format!(
                "bad attribute name `{key}` in <{}>",
                AsRef::<str>::as_ref(&start.name())
            ));
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        if key == "xmlns" {
            scope.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            scope.push((prefix.to_string(), value));
        } else {
            attributes.push((local_part(key).to_string(), value));
        }
    }
    let qname: String = AsRef::<str>::as_ref(&start.name()).to_string();
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname.as_str()),
    };
    if !is_qname(&qname) {
        return Err(format!("bad element name <{qname}>"));
    }
    let own = [scope.clone()];
    let namespace = lookup_in(own.iter().chain(scopes.iter().rev()), prefix);
    let element = Element {
        name: local.to_string(),
        namespace,
        attributes,
        ..Element::default()
    };
    Ok((element, scope))
}

fn lookup(scopes: &[Vec<(String, String)>], prefix: Option<&str>) -> Option<String> {
    lookup_in(scopes.iter().rev(), prefix)
}

fn lookup_in<'a>(
    scopes: impl Iterator<Item = &'a Vec<(String, String)>>,
    prefix: Option<&str>,
) -> Option<String> {
    let prefix = prefix.unwrap_or("");
    for scope in scopes {
        if let Some((_, uri)) = scope.iter().rev().find(|(p, _)| p == prefix) {
            return (!uri.is_empty()).then(|| uri.clone());
        }
    }
    None
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The SOAP body content of a fixture under `tests/data/onvif/` (for the
/// parser tests of every ONVIF module).
#[cfg(test)]
pub(crate) fn fixture_body(path: &str) -> Element {
    let p = format!(
        "{}/../../tests/data/onvif/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let doc = parse(&bytes).unwrap_or_else(|e| panic!("{p}: {e}"));
    super::soap::body_content(&doc)
        .unwrap_or_else(|e| panic!("{p}: no SOAP body: {e}"))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_matter_but_namespaces_are_kept() {
        let a = parse(br#"<a:Env xmlns:a="urn:x"><a:Body><b:Uri xmlns:b="urn:y">rtsp://h/1?a=1&amp;b=2</b:Uri></a:Body></a:Env>"#).unwrap();
        let b =
            parse(br#"<Env xmlns="urn:x"><Body><Uri>rtsp://h/1?a=1&amp;b=2</Uri></Body></Env>"#)
                .unwrap();
        for doc in [&a, &b] {
            assert_eq!(doc.name, "Env");
            assert_eq!(doc.namespace.as_deref(), Some("urn:x"));
            assert_eq!(doc.text_at(&["Body", "Uri"]), Some("rtsp://h/1?a=1&b=2"));
        }
        assert_eq!(
            a.path(&["Body", "Uri"]).unwrap().namespace.as_deref(),
            Some("urn:y")
        );
        assert_eq!(
            b.path(&["Body", "Uri"]).unwrap().namespace.as_deref(),
            Some("urn:x")
        );
    }

    #[test]
    fn undeclared_prefixes_are_tolerated() {
        let doc =
            parse(b"<SOAP-ENV:Envelope><SOAP-ENV:Body><x/></SOAP-ENV:Body></SOAP-ENV:Envelope>")
                .unwrap();
        assert_eq!(doc.name, "Envelope");
        assert!(doc.namespace.is_none());
        assert!(doc.path(&["Body", "x"]).is_some());
    }

    #[test]
    fn qname_text_resolves_its_prefix() {
        let doc = parse(
            br#"<f xmlns:ter="http://www.onvif.org/ver10/error"><v> ter:NotAuthorized </v></f>"#,
        )
        .unwrap();
        let v = doc.child("v").unwrap();
        assert_eq!(v.text_local(), "NotAuthorized");
        assert_eq!(
            v.text_namespace.as_deref(),
            Some("http://www.onvif.org/ver10/error")
        );
    }

    #[test]
    fn attributes_cdata_and_char_refs() {
        let doc =
            parse(br#"<r t:token="p&lt;1" xmlns:t="u"><n><![CDATA[a<b]]>&#x41;&#66;</n></r>"#)
                .unwrap();
        assert_eq!(doc.attr("token"), Some("p<1"));
        assert_eq!(doc.text_at(&["n"]), Some("a<bAB"));
    }

    #[test]
    fn bad_documents_are_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"<a>",
            b"<a><b></a>",
            b"</a>",
            b"<a></a><b/>",
            b"text",
            b"<a>&nope;</a>",
            b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            b"\xff\xfe<\x00a\x00/\x00>\x00",
            b"<a b='1' b='2'/>",
            // Found by the long fuzz run: a mangled attribute name.
            b"<a =onstantBitRate='true'/>",
            b"<a b:='1'/>",
            b"<1a/>",
            b"<a:/>",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "{:?}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn depth_and_count_are_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let wide = format!("<r>{}</r>", "<e/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(wide.as_bytes()), Err(XmlError::TooManyElements));
    }
}
