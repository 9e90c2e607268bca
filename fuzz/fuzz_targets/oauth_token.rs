//! An OAuth 2.0 authorization server's answer to a token request: the first byte picks the HTTP
//! status, the rest is the body, parsed and checked as a client credentials grant does.
#![no_main]

use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 6] = [200, 400, 401, 403, 500, 302];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(pick) % STATUSES.len()];
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let _ = lockstep_connectors::oauth::token_response(status, body, now);
});
