//! RFC 8288 `Link` header values: the target of `rel="next"`.

/// The first link target whose relation types include `next`, from one or more `Link` header
/// values (`<https://api.example.com/items?page=2>; rel="next", <…>; rel="last"`). Quoted
/// strings, extra parameters, several relation types (`rel="next last"`) and odd spacing are
/// handled; malformed links are skipped.
pub(crate) fn next_link<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values.into_iter().find_map(|value| {
        parse(value)
            .into_iter()
            .find(|link| link.rels.iter().any(|rel| rel.eq_ignore_ascii_case("next")))
            .map(|link| link.target)
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Link {
    target: String,
    rels: Vec<String>,
}

/// Every well-formed link of one header value.
fn parse(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        // Between links: spaces and commas.
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        match chars.next() {
            None => return links,
            Some('<') => {}
            Some(_) => {
                // Not a link: skip to the next comma outside quotes.
                skip_to_comma(&mut chars);
                continue;
            }
        }
        let target: String = chars.by_ref().take_while(|c| *c != '>').collect();
        let mut rels = Vec::new();
        // Parameters: `; name[=value]`, until a comma or the end.
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            match chars.peek() {
                Some(';') => {
                    chars.next();
                }
                Some(',') | None => break,
                Some(_) => {
                    skip_to_comma(&mut chars);
                    break;
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut name = String::new();
            while let Some(c) =
                chars.next_if(|c| !matches!(c, '=' | ';' | ',') && !c.is_whitespace())
            {
                name.push(c);
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut param = String::new();
            if chars.next_if_eq(&'=').is_some() {
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if chars.next_if_eq(&'"').is_some() {
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => param.extend(chars.next()),
                            c => param.push(c),
                        }
                    }
                } else {
                    while let Some(c) =
                        chars.next_if(|c| !matches!(c, ';' | ',') && !c.is_whitespace())
                    {
                        param.push(c);
                    }
                }
            }
            // The first `rel` counts (RFC 8288 §3.3).
            if name.eq_ignore_ascii_case("rel") && rels.is_empty() {
                rels = param.split_whitespace().map(str::to_owned).collect();
            }
        }
        let target = target.trim();
        if !target.is_empty() {
            links.push(Link {
                target: target.to_owned(),
                rels,
            });
        }
    }
}

fn skip_to_comma(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut quoted = false;
    while let Some(c) = chars.next_if(|c| quoted || *c != ',') {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                chars.next();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        for (header, expected) in [
            (
                r#"<https://a.example/x?page=2>; rel="next""#,
                Some("https://a.example/x?page=2"),
            ),
            (
                r#"<https://a.example/x?page=1>; rel="prev", <https://a.example/x?page=3>; rel="next""#,
                Some("https://a.example/x?page=3"),
            ),
            (r#"</items?after=a,b>;rel=next"#, Some("/items?after=a,b")),
            (
                r#"<https://a.example/l>; title="a, \"quoted\"; one"; rel="last", <https://a.example/n>; rel="prefetch NEXT""#,
                Some("https://a.example/n"),
            ),
            (r#"<https://a.example/l>; rel="last""#, None),
            (
                r#"garbage, <https://a.example/n> ; rel = "next""#,
                Some("https://a.example/n"),
            ),
            (r#"<https://a.example/n>; rel="nextpage""#, None),
            ("", None),
            ("<unterminated", None),
        ] {
            assert_eq!(next_link([header]).as_deref(), expected, "{header}");
        }
        assert_eq!(
            next_link([r#"<a>; rel="last""#, r#"<b>; rel="next""#]).as_deref(),
            Some("b")
        );
    }
}
