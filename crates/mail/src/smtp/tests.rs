//! Which SMTP URLs are accepted, and what they mean.

use super::*;

fn parsed(url: &str) -> SmtpUrl {
    match SmtpUrl::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{url} was refused: {e}"),
    }
}

fn refused(url: &str) {
    match SmtpUrl::parse(url) {
        Err(MailError::InvalidSmtpUrl) => {}
        other => panic!("{url} should be refused, got {other:?}"),
    }
}

fn with_login(host: &str, port: u16, security: Security, user: &str, pw: &str) -> SmtpUrl {
    SmtpUrl {
        host: host.to_owned(),
        port,
        security,
        credentials: Some((user.to_owned(), pw.to_owned())),
    }
}

#[test]
fn smtp_means_required_starttls_with_submission_port_by_default() {
    assert!(
        parsed("smtp://user:pw@mail.example.com:2525")
            == with_login("mail.example.com", 2525, Security::StartTls, "user", "pw")
    );
    assert!(
        parsed("smtp://user:pw@mail.example.com")
            == with_login("mail.example.com", 587, Security::StartTls, "user", "pw")
    );
    assert!(
        parsed("smtp://user:pw@mail.example.com?tls=required")
            == with_login("mail.example.com", 587, Security::StartTls, "user", "pw")
    );
}

#[test]
fn smtps_means_implicit_tls_on_port_465_by_default() {
    assert!(
        parsed("smtps://user:pw@mail.example.com")
            == with_login("mail.example.com", 465, Security::ImplicitTls, "user", "pw")
    );
    assert!(
        parsed("smtps://user:pw@mail.example.com:1465")
            == with_login(
                "mail.example.com",
                1465,
                Security::ImplicitTls,
                "user",
                "pw"
            )
    );
}

#[test]
fn user_and_password_are_percent_decoded() {
    assert!(
        parsed("smtps://me%40example.com:p%3Ass%2Fw%40rd@mail.example.com")
            == with_login(
                "mail.example.com",
                465,
                Security::ImplicitTls,
                "me@example.com",
                "p:ss/w@rd"
            )
    );
}

#[test]
fn no_login_is_allowed() {
    let url = parsed("smtp://relay.example.com:25");
    assert_eq!(url.credentials, None);
    assert_eq!(url.security, Security::StartTls);
}

#[test]
fn plaintext_is_allowed_on_loopback_only() {
    for (url, host) in [
        ("smtp://127.0.0.1:2525?tls=none", "127.0.0.1"),
        ("smtp://localhost:2525?tls=none", "localhost"),
        ("smtp://LOCALHOST:2525?tls=none", "localhost"),
        ("smtp://[::1]:2525?tls=none", "::1"),
    ] {
        let parsed = parsed(url);
        assert_eq!(parsed.security, Security::None, "{url}");
        assert_eq!(parsed.host, host, "{url}");
        assert_eq!(parsed.port, 2525, "{url}");
    }
    assert_eq!(parsed("smtp://localhost?tls=none").port, 25);
    refused("smtp://mail.example.com:25?tls=none");
    refused("smtp://10.0.0.1:25?tls=none");
    refused("smtp://localhost.example.com:25?tls=none");
    refused("smtp://127.0.0.1.nip.io:25?tls=none");
}

#[test]
fn garbage_is_refused() {
    for url in [
        "",
        "not a url",
        "mail.example.com:587",
        "http://mail.example.com",
        "smtp://",
        "smtp:///nohost",
        "smtps://mail.example.com?tls=none",
        "smtps://mail.example.com?tls=required",
        "smtp://mail.example.com?tls=opportunistic",
        "smtp://mail.example.com?tls=none&tls=required",
        "smtp://mail.example.com?tsl=none",
        "smtp://mail.example.com/helo.example.com",
        "smtp://mail.example.com#x",
        "smtp://mail.example.com:0",
        "smtp://mail.example.com:99999",
        "smtp://user@mail.example.com",
        "smtp://:pw@mail.example.com",
        "smtp://user:%FF@mail.example.com",
    ] {
        refused(url);
    }
}

#[test]
fn url_debug_hides_the_password() {
    let debug = format!("{:?}", parsed("smtps://user:hunter2@mail.example.com"));
    assert!(debug.contains("user"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn server_replies_lose_their_text_but_keep_their_code() {
    let refusal = SmtpRefusal {
        code: Some("550".to_owned()),
        permanent: true,
    };
    assert_eq!(
        refusal.to_string(),
        "the SMTP server refused with 550 (permanent)"
    );
}

#[test]
fn host_names_are_lower_cased_and_checked() {
    assert_eq!(parsed("smtps://Mail.Example.COM").host, "mail.example.com");
    assert_eq!(parsed("smtps://192.0.2.7").host, "192.0.2.7");
    assert_eq!(parsed("smtps://[2001:db8::1]").host, "2001:db8::1");
    refused("smtps://mail%2Eexample.com");
    refused("smtps://mail_example.com");
    refused("smtp://local%68ost:25?tls=none");
}
