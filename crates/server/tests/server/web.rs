//! Pages in process, as a browser without JavaScript uses them: cookies kept between requests,
//! forms posted with the CSRF token of the page they came from. (The real browser test is in
//! lockstep-cli's `tests/browser.rs`.)

use super::connections::{Env, env};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use std::collections::BTreeMap;
use tower::ServiceExt;

pub(super) const PASSWORD: &str = "correct horse battery staple";

/// One answer of a page.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) status: StatusCode,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: String,
}

impl Page {
    /// Where a 303 sends the browser.
    pub(super) fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The value of the first `name="csrf"` hidden input of the page.
    pub(super) fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")?;
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        Some(rest[..rest.find('"')?].to_owned())
    }
}

/// A browser's cookie jar over the in-process router.
pub(super) struct Browser {
    app: Router,
    cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had a form.
    pub(super) csrf: String,
}

impl Browser {
    pub(super) fn new(app: &Router) -> Browser {
        Browser {
            app: app.clone(),
            cookies: BTreeMap::new(),
            csrf: String::new(),
        }
    }

    /// Signs in through `/login` with [`PASSWORD`] (no TOTP).
    pub(super) async fn signed_in(app: &Router, email: &str) -> Browser {
        let mut browser = Browser::new(app);
        let page = browser.get("/login").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = browser
            .post("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
        browser
    }

    pub(super) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub(super) async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None, &[]).await
    }

    /// Posts a form with the CSRF token of the last page.
    pub(super) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// Posts a form exactly as given (no CSRF token added).
    pub(super) async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// An htmx request: the CSRF token as `X-CSRF-Token`.
    pub(super) async fn hx_post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let csrf = self.csrf.clone();
        self.send(
            Method::POST,
            path,
            Some(body),
            &[("x-csrf-token", csrf.as_str()), ("hx-request", "true")],
        )
        .await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        extra: &[(&str, &str)],
    ) -> Page {
        let mut request = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, jar);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            // SameSite=Lax only for the OAuth binding, which must come back on the provider's
            // cross-site redirect; None only for the SSO binding, which must come back on a
            // SAML IdP's cross-site POST.
            let same_site = match name {
                "__Host-lockstep_oauth" => "SameSite=Lax",
                "__Host-lockstep_sso" => "SameSite=None",
                _ => "SameSite=Strict",
            };
            assert!(
                name.starts_with("__Host-")
                    && attributes.contains("Secure")
                    && attributes.contains("HttpOnly")
                    && attributes.contains(same_site),
                "a cookie without the __Host- prefix, Secure, HttpOnly and {same_site}: {text}"
            );
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 8 << 20)
            .await
            .unwrap();
        let page = Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Some(csrf) = page.csrf() {
            self.csrf = csrf;
        }
        page
    }
}

/// The in-process fixture of `connections.rs` (organization "alpha" with admin@, editor@ and
/// viewer@alpha.io) and a signed-in browser for each.
pub(super) async fn web_env(egress: &str) -> (Env, Browser, Browser, Browser) {
    let env = env(egress).await;
    let admin = Browser::signed_in(&env.app, "admin@alpha.io").await;
    let editor = Browser::signed_in(&env.app, "editor@alpha.io").await;
    let viewer = Browser::signed_in(&env.app, "viewer@alpha.io").await;
    (env, admin, editor, viewer)
}

/// Whether `needle` shows on the page as text (outside of tags and their attributes).
pub(super) fn shows_as_text(page: &Page, needle: &str) -> bool {
    page.body.match_indices(needle).any(|(at, _)| {
        let before = &page.body[..at];
        match (before.rfind('<'), before.rfind('>')) {
            (Some(open), Some(close)) => close > open,
            (Some(_), None) => false,
            (None, _) => true,
        }
    })
}

/// The anchors the error summary at the top of a form links to (`#id` without the `#`).
pub(super) fn summary_anchors(page: &Page) -> Vec<String> {
    let at = page
        .body
        .find(r#"id="error-summary""#)
        .unwrap_or_else(|| panic!("no error summary: {}", page.body));
    let summary = &page.body[at..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    summary
        .split("<a href=\"#")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}
