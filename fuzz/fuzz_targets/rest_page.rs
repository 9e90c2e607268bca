//! One page of a REST API's answer: the first line is a `Link` header value, the second the JSON
//! pointer to the records, the third the pointer to the next cursor, the rest the body. The page
//! is read as the paginated read does: next link, records, their inferred fields, the cursor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PAGE: LazyLock<Option<url::Url>> =
    LazyLock::new(|| url::Url::parse("https://api.example.com/v1/items?page=1").ok());

fuzz_target!(|data: &[u8]| {
    let Some(page) = PAGE.as_ref() else {
        return;
    };
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let link = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let records = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let cursor = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let _ = lockstep_connectors::rest::read_page(page, &[&link], body, &records, &cursor);
});
