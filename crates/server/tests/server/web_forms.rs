//! Long forms open with a summary of their errors whose links lead to the inputs (in process,
//! see `web.rs`).

use super::web::{Browser, Page, summary_anchors, web_env};
use lockstep_domain::Role;

/// Every link of the summary leads to an input, select or textarea of the page.
fn assert_summary_leads_to_inputs(page: &Page) -> Vec<String> {
    let anchors = summary_anchors(page);
    assert!(!anchors.is_empty(), "an empty summary: {}", page.body);
    for anchor in &anchors {
        let at = page
            .body
            .find(&format!(" id=\"{anchor}\""))
            .unwrap_or_else(|| panic!("the summary links to #{anchor}, which is not on the page"));
        let tag = &page.body[page.body[..at].rfind('<').unwrap()..at];
        assert!(
            ["<input", "<select", "<textarea"]
                .iter()
                .any(|t| tag.starts_with(t)),
            "#{anchor} is no input: {tag}"
        );
    }
    anchors
}

#[tokio::test]
async fn the_connection_forms_summary_links_to_the_inputs_of_the_kind_shown() {
    let (_env, mut admin, _, _) = web_env("loopback").await;
    admin.get("/connections/new").await;
    let refused = admin
        .post(
            "/connections",
            &[
                ("name", "Shop"),
                ("kind", "mysql"),
                ("mysql.config.host", "db.invalid"),
                ("mysql.config.port", "not a number"),
                ("mysql.config.database", "shop"),
                ("mysql.config.user", "shop"),
                ("mysql.config.tls", "prefer"),
                // A browser without script sends every kind's fields.
                ("postgres.config.host", "pg.invalid"),
                ("postgres.config.port", "abc"),
                ("postgres.config.tls", "disable"),
                ("rest.config.auth.kind", "none"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let anchors = assert_summary_leads_to_inputs(&refused);
    assert_eq!(anchors, ["mysql-config-port"], "{}", refused.body);
}

#[tokio::test]
async fn the_settings_account_and_invitation_forms_have_a_summary() {
    let (env, mut admin, _, _) = web_env("loopback").await;
    admin.get("/settings").await;
    for (depth, zone, anchor) in [
        ("many", "UTC", "audit_depth"),
        ("10", "Mars/Olympus_Mons", "time_zone"),
    ] {
        let settings = admin
            .post("/settings", &[("audit_depth", depth), ("time_zone", zone)])
            .await;
        assert_eq!(settings.status, 422, "{}", settings.body);
        assert_eq!(assert_summary_leads_to_inputs(&settings), [anchor]);
    }

    admin.get("/account").await;
    let token = admin
        .post(
            "/account/tokens",
            &[
                ("name", "nightly"),
                ("scope", "read"),
                ("expires_in_days", "0"),
            ],
        )
        .await;
    assert_eq!(token.status, 422, "{}", token.body);
    assert_eq!(assert_summary_leads_to_inputs(&token), ["token-days"]);
    let token = admin
        .post(
            "/account/tokens",
            &[
                ("name", "nightly"),
                ("scope", "everything"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(token.status, 422, "{}", token.body);
    assert_eq!(assert_summary_leads_to_inputs(&token), ["token-scope"]);

    let password = admin
        .post(
            "/account/password",
            &[
                ("current_password", "not the password"),
                ("password", "short"),
                ("password_again", "other"),
            ],
        )
        .await;
    assert_eq!(password.status, 422, "{}", password.body);
    assert_summary_leads_to_inputs(&password);

    let caller = env.hub.authenticate(&env.admin).await.unwrap();
    let invitation = env
        .hub
        .invite_user(&caller, "lin@alpha.io", Role::Viewer)
        .await
        .unwrap();
    let mut newcomer = Browser::new(&env.app);
    newcomer.get("/accept-invitation").await;
    let accept = newcomer
        .post(
            "/accept-invitation",
            &[
                ("token", invitation.token.expose()),
                ("display_name", ""),
                ("password", "short"),
                ("password_again", "different"),
            ],
        )
        .await;
    assert_eq!(accept.status, 422, "{}", accept.body);
    assert_eq!(assert_summary_leads_to_inputs(&accept), ["password_again"]);
    let unknown = newcomer
        .post(
            "/accept-invitation",
            &[
                ("token", "lsi_no_such_invitation"),
                ("display_name", "Lin"),
                ("password", "a long enough passphrase"),
                ("password_again", "a long enough passphrase"),
            ],
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(assert_summary_leads_to_inputs(&unknown), ["token"]);
}
