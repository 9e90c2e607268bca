//! A bounded, namespace-aware read of untrusted XML into a small tree, before any XML library
//! with DTD support sees it: a DOCTYPE (and so any entity declaration) is refused from the raw
//! text, unknown entity references, encodings other than UTF-8, deep nesting and huge element
//! counts are refused while reading. Used to check the shape of IdP metadata and SAML responses
//! and to read the content that xmlsec verified.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// How deep elements may nest (real metadata and responses stay under 15).
pub(crate) const MAX_DEPTH: usize = 48;
/// How many elements one document may hold.
pub(crate) const MAX_ELEMENTS: usize = 20_000;

pub(crate) const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// Why a document was not read. Says what is wrong and where, never a value from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlError {
    /// A `<!DOCTYPE`, `<!ENTITY` or any other markup declaration.
    Dtd,
    /// An XML declaration naming an encoding other than UTF-8.
    Encoding,
    /// Nesting deeper than [`MAX_DEPTH`] or more than [`MAX_ELEMENTS`] elements.
    TooComplex,
    /// Not well-formed (the byte offset where reading stopped).
    NotWellFormed(u64),
    /// No root element.
    Empty,
}

impl XmlError {
    pub(crate) fn describe(&self) -> String {
        match self {
            XmlError::Dtd => "a DOCTYPE or entity declaration (refused before parsing)".to_owned(),
            XmlError::Encoding => "an encoding other than UTF-8".to_owned(),
            XmlError::TooComplex => format!(
                "nested deeper than {MAX_DEPTH} elements or more than {MAX_ELEMENTS} elements"
            ),
            XmlError::NotWellFormed(at) => format!("not well-formed XML (near byte {at})"),
            XmlError::Empty => "no root element".to_owned(),
        }
    }
}

/// One element: its namespace URI (empty when none), local name, attributes (without namespace
/// declarations), child elements and its own text (text and CDATA children joined, comments
/// skipped, so a comment inside a value can never truncate it).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub ns: String,
    pub name: String,
    pub attributes: Vec<XmlAttribute>,
    pub children: Vec<Element>,
    pub text: String,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct XmlAttribute {
    /// Empty for an unqualified attribute (`ID`, `Format`, …).
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// Names only: values and text may be personal data.
impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("ns", &self.ns)
            .field("name", &self.name)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

impl Element {
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An unqualified attribute's value.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub(crate) fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    pub(crate) fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every element below this one (not itself), depth first.
    pub(crate) fn descendants(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(element) = stack.pop() {
            out.push(element);
            stack.extend(element.children.iter().rev());
        }
        out
    }

    /// The text with surrounding white space removed.
    pub(crate) fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Refuses markup declarations from the raw text: any `<!` that does not open a comment or a
/// CDATA section (so `<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, … in any case), and an XML
/// declaration naming another encoding than UTF-8.
pub(crate) fn refuse_declarations(xml: &str) -> Result<(), XmlError> {
    // Characters XML 1.0 does not allow: parsers differ on them, so none is let through.
    if let Some(at) = xml.char_indices().find_map(|(at, c)| {
        let forbidden =
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}');
        forbidden.then_some(at)
    }) {
        return Err(XmlError::NotWellFormed(at as u64));
    }
    let bytes = xml.as_bytes();
    let mut from = 0;
    while let Some(offset) = find(bytes.get(from..).unwrap_or_default(), b"<!") {
        let at = from + offset;
        let rest = bytes.get(at..).unwrap_or_default();
        if !rest.starts_with(b"<!--") && !rest.starts_with(b"<![CDATA[") {
            return Err(XmlError::Dtd);
        }
        // Skip to the end of the comment or CDATA section: a `<!` inside it is text.
        let end_marker: &[u8] = if rest.starts_with(b"<!--") {
            b"-->"
        } else {
            b"]]>"
        };
        match find(rest.get(2..).unwrap_or_default(), end_marker) {
            Some(end) => from = at + 2 + end + end_marker.len(),
            None => return Err(XmlError::NotWellFormed(at as u64)),
        }
    }
    let start = xml.trim_start_matches('\u{feff}').trim_start();
    if let Some(declaration) = start.strip_prefix("<?xml") {
        let declaration = declaration.split("?>").next().unwrap_or_default();
        let lower = declaration.to_ascii_lowercase();
        if let Some(position) = lower.find("encoding") {
            let value = lower
                .get(position + "encoding".len()..)
                .unwrap_or_default()
                .trim_start()
                .trim_start_matches('=')
                .trim_start();
            let value = value.trim_start_matches(['"', '\'']);
            if !(value.starts_with("utf-8\"") || value.starts_with("utf-8'")) {
                return Err(XmlError::Encoding);
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads `xml` into a tree after [`refuse_declarations`]. Strict: end tags must match, unknown
/// entity references are refused, attributes must be unique.
pub(crate) fn parse(xml: &str) -> Result<Element, XmlError> {
    refuse_declarations(xml)?;
    let mut reader = NsReader::from_str(xml.trim_start_matches('\u{feff}'));
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let position = reader.buffer_position();
        let not_well_formed = |_| XmlError::NotWellFormed(position);
        let (namespace, event) = reader.read_resolved_event().map_err(not_well_formed)?;
        let namespace =
            namespace_uri(&namespace).map_err(|()| XmlError::NotWellFormed(position))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::NotWellFormed(position));
            }
            Event::Start(start) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex);
                }
                let element = open(&reader, &start, namespace, position)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex);
                }
                let element = open(&reader, &start, namespace, position)?;
                close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or(XmlError::NotWellFormed(position))?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                let text = text
                    .xml10_content()
                    .map_err(|_| XmlError::NotWellFormed(position))?;
                append_text(&mut stack, &text, position)?;
            }
            Event::CData(data) => {
                let text = data
                    .xml10_content()
                    .map_err(|_| XmlError::NotWellFormed(position))?;
                append_text(&mut stack, &text, position)?;
            }
            Event::GeneralRef(reference) => {
                let text = if reference.is_char_ref() {
                    reference
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or(XmlError::NotWellFormed(position))?
                        .to_string()
                } else {
                    let name = reference
                        .decode()
                        .map_err(|_| XmlError::NotWellFormed(position))?;
                    match name.as_ref() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        _ => return Err(XmlError::NotWellFormed(position)),
                    }
                    .to_owned()
                };
                append_text(&mut stack, &text, position)?;
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::NotWellFormed(reader.buffer_position()));
    }
    root.ok_or(XmlError::Empty)
}

fn namespace_uri(namespace: &ResolveResult<'_>) -> Result<String, ()> {
    match namespace {
        ResolveResult::Bound(ns) => std::str::from_utf8(ns.as_ref())
            .map(str::to_owned)
            .map_err(|_| ()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(_) => Err(()),
    }
}

fn open(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
    position: u64,
) -> Result<Element, XmlError> {
    let name = std::str::from_utf8(start.local_name().as_ref())
        .map_err(|_| XmlError::NotWellFormed(position))?
        .to_owned();
    let mut attributes = Vec::new();
    let mut raw = start.attributes();
    raw.with_checks(true);
    for attribute in raw {
        let attribute = attribute.map_err(|_| XmlError::NotWellFormed(position))?;
        let key = attribute.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (namespace, local) = reader.resolver().resolve_attribute(key);
        let ns = namespace_uri(&namespace).map_err(|()| XmlError::NotWellFormed(position))?;
        let name = std::str::from_utf8(local.as_ref())
            .map_err(|_| XmlError::NotWellFormed(position))?
            .to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| XmlError::NotWellFormed(position))?
            .into_owned();
        attributes.push(XmlAttribute { ns, name, value });
    }
    Ok(Element {
        ns,
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str, position: u64) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        // Only white space may stand outside the root element.
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError::NotWellFormed(position)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype_and_entities_in_any_case() {
        for xml in [
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>",
            "<?xml version=\"1.0\"?>\n<!doctype x><x/>",
            "<x><!ENTITY a \"b\"></x>",
            "<!-- c --><!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>",
        ] {
            assert_eq!(parse(xml), Err(XmlError::Dtd), "{xml}");
        }
    }

    #[test]
    fn refuses_characters_xml_does_not_allow() {
        assert!(matches!(
            parse("<x>a\u{1}b</x>"),
            Err(XmlError::NotWellFormed(4))
        ));
        assert!(matches!(
            parse("<x a=\"\u{0}\"/>"),
            Err(XmlError::NotWellFormed(_))
        ));
        assert!(parse("<x>a\tb\r\n</x>").is_ok());
    }

    #[test]
    fn comments_and_cdata_may_hold_markup_like_text() {
        let root = parse("<x><!-- <!DOCTYPE --><![CDATA[<!ENTITY]]></x>").unwrap();
        assert_eq!(root.text, "<!ENTITY");
    }

    #[test]
    fn refuses_unknown_entities_and_other_encodings() {
        assert!(matches!(
            parse("<x>&nbsp;</x>"),
            Err(XmlError::NotWellFormed(_))
        ));
        assert!(matches!(
            parse("<x a=\"&foo;\"/>"),
            Err(XmlError::NotWellFormed(_))
        ));
        assert_eq!(
            parse("<?xml version='1.0' encoding='UTF-16'?><x/>"),
            Err(XmlError::Encoding)
        );
        assert!(parse("<?xml version='1.0' encoding='utf-8'?><x/>").is_ok());
    }

    #[test]
    fn a_comment_does_not_truncate_a_value() {
        let root = parse("<x>user@evil.example<!---->.good.example</x>").unwrap();
        assert_eq!(root.text, "user@evil.example.good.example");
        let root = parse("<x>a&amp;b&#65;</x>").unwrap();
        assert_eq!(root.text, "a&bA");
    }

    #[test]
    fn namespaces_are_resolved() {
        let root =
            parse("<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\"><b p:c=\"1\" d=\"2\"/></p:a>").unwrap();
        assert!(root.is("urn:p", "a"));
        let b = root.child("urn:d", "b").unwrap();
        assert_eq!(b.attr("d"), Some("2"));
        assert_eq!(b.attr("c"), None);
        assert!(matches!(parse("<q:a/>"), Err(XmlError::NotWellFormed(_))));
    }

    #[test]
    fn refuses_deep_nesting_and_second_roots() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), Err(XmlError::TooComplex));
        assert!(matches!(parse("<a/><b/>"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(parse("<a></b>"), Err(XmlError::NotWellFormed(_))));
        assert!(matches!(parse("<a>"), Err(XmlError::NotWellFormed(_))));
        assert_eq!(parse("  "), Err(XmlError::Empty));
    }
}
