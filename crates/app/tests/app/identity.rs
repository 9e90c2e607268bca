//! Identity on a real store: invitations, sign-in and lockout, session expiry with a manual
//! clock, what ends sessions, TOTP, password reset, API tokens.

use lockstep_app::{
    AppError, Caller, Hub, HubOptions, LockoutPolicy, ManualClock, Password, SessionPolicy,
    SettingsUpdate, UserUpdate,
};
use lockstep_auth::TotpSecret;
use lockstep_domain::Role;
use lockstep_mail::MemoryMailer;
use lockstep_storage::testing::TestStore;
use std::sync::Arc;
use time::Duration;
use time::macros::datetime;

pub(super) const PASSWORD: &str = "correct horse battery staple";

pub(super) struct World {
    pub(super) _t: TestStore,
    pub(super) hub: Hub,
    clock: Arc<ManualClock>,
    mail: Arc<MemoryMailer>,
    pub(super) admin_email: String,
}

pub(super) async fn world(t: TestStore) -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-22 09:00 UTC)));
    let mail = Arc::new(MemoryMailer::new());
    let (hub, creds) = Hub::initialize(t.store.clone(), clock.clone(), 1, 1)
        .await
        .unwrap();
    let hub = hub.with_options(HubOptions {
        lockout: LockoutPolicy {
            max_failures: 5,
            lock_for: Duration::minutes(15),
        },
        sessions: SessionPolicy {
            idle_timeout: Duration::minutes(30),
            max_lifetime: Duration::hours(12),
        },
        mailer: Some(mail.clone()),
        public_url: "https://hub.test".into(),
        password_permits: 2,
        ..HubOptions::default()
    });
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let org = hub
        .create_organization(&op, "Acme", "ada@acme.io")
        .await
        .unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw(PASSWORD), "Ada")
        .await
        .unwrap();
    World {
        _t: t,
        hub,
        clock,
        mail,
        admin_email: "ada@acme.io".into(),
    }
}

fn pw(text: &str) -> Password {
    Password::new(text.to_owned())
}

pub(super) async fn sign_in(
    w: &World,
    email: &str,
    password: &str,
) -> Result<(String, Caller), AppError> {
    let done = w.hub.login(email, &pw(password), None).await?;
    let token = done.session_token.expose().to_owned();
    let caller = w.hub.authenticate(&token).await?;
    Ok((token, caller))
}

/// Invites `email` with `role` as the admin and accepts; returns the new member's session.
async fn add_member(w: &World, admin: &Caller, email: &str, role: Role) -> (String, Caller) {
    let inv = w.hub.invite_user(admin, email, role).await.unwrap();
    w.hub
        .accept_invitation(inv.token.expose(), &pw(PASSWORD), "Member")
        .await
        .unwrap();
    sign_in(w, email, PASSWORD).await.unwrap()
}

lockstep_storage::on_both_stores!(an_invitation_makes_an_administrator_once);
async fn an_invitation_makes_an_administrator_once(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let me = w.hub.me(&admin).await.unwrap();
    assert_eq!(
        (me.email.as_str(), me.display_name.as_str(), me.role),
        ("ada@acme.io", "Ada", Role::Administrator)
    );

    let inv = w
        .hub
        .invite_user(&admin, "ed@acme.io", Role::Editor)
        .await
        .unwrap();
    let sent = w.mail.messages();
    assert_eq!(
        sent.len(),
        2,
        "the first administrator's and the editor's invitations"
    );
    assert_eq!(sent[0].to, "ada@acme.io");
    assert_eq!(sent[1].to, "ed@acme.io");
    assert!(sent[1].body.contains(inv.token.expose()));
    // Every mail names the organization, and an invitation who sent it.
    assert!(sent[0].subject.contains("Acme"), "{}", sent[0].subject);
    assert!(sent[0].body.contains("Acme"), "{}", sent[0].body);
    assert_eq!(sent[1].subject, "Ada invited you to Acme on Lockstep");
    assert!(
        sent[1]
            .body
            .starts_with("Ada invited you to join Acme on Lockstep as an Editor."),
        "{}",
        sent[1].body
    );
    // Weak passwords and bad names change nothing; the invitation still works afterwards.
    for (password, name) in [("short", "Ed"), ("password123", "Ed"), (PASSWORD, "")] {
        let err = w
            .hub
            .accept_invitation(inv.token.expose(), &pw(password), name)
            .await;
        assert!(matches!(err, Err(AppError::Invalid { .. })), "{err:?}");
    }
    w.hub
        .accept_invitation(inv.token.expose(), &pw(PASSWORD), "Ed")
        .await
        .unwrap();
    let again = w
        .hub
        .accept_invitation(inv.token.expose(), &pw(PASSWORD), "Ed")
        .await;
    assert!(matches!(again, Err(AppError::NotFound(_))), "{again:?}");
    let (_, ed) = sign_in(&w, "ed@acme.io", PASSWORD).await.unwrap();
    assert_eq!(ed.member.role, Role::Editor);

    let dup = w.hub.invite_user(&admin, "ED@acme.io", Role::Viewer).await;
    assert!(matches!(dup, Err(AppError::Conflict(_))), "{dup:?}");

    // Expired invitations do not work.
    let late = w
        .hub
        .invite_user(&admin, "late@acme.io", Role::Viewer)
        .await
        .unwrap();
    w.clock.advance(Duration::days(7) + Duration::seconds(1));
    let err = w
        .hub
        .accept_invitation(late.token.expose(), &pw(PASSWORD), "Late")
        .await;
    assert!(matches!(err, Err(AppError::NotFound(_))), "{err:?}");
}

lockstep_storage::on_both_stores!(invitations_refuse_addresses_the_mailer_would_refuse);
async fn invitations_refuse_addresses_the_mailer_would_refuse(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let mails = w.mail.messages().len();
    for address in [
        "\"><script>alert(1)</script>@example.com",
        "a>b@x.example",
        "x@[127.0.0.1]",
    ] {
        let refused = w.hub.invite_user(&admin, address, Role::Viewer).await;
        match &refused {
            Err(AppError::Invalid { field, reason }) => {
                assert_eq!(*field, "email");
                assert!(!reason.contains(address), "the reason echoes the address");
            }
            other => panic!("{address:?}: {other:?}"),
        }
    }
    assert_eq!(w.mail.messages().len(), mails, "an invitation was mailed");
    // What is accepted is mailed (the memory mailer refuses what lettre cannot parse).
    w.hub
        .invite_user(&admin, "o'brien+hub@mail.example.ie", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(w.mail.messages().len(), mails + 1);
}

lockstep_storage::on_both_stores!(lockout_after_five_failures_with_one_answer_for_every_failure);
async fn lockout_after_five_failures_with_one_answer_for_every_failure(t: TestStore) {
    let w = world(t).await;
    let email = w.admin_email.clone();
    // Unknown address, malformed address and wrong password: the same error.
    for (e, p) in [
        ("nobody@acme.io", PASSWORD),
        ("not an address", PASSWORD),
        (email.as_str(), "wrong password!"),
    ] {
        assert!(
            matches!(
                w.hub.login(e, &pw(p), None).await,
                Err(AppError::LoginFailed)
            ),
            "{e}"
        );
    }
    // Three more failures (four in all), then a success resets the count.
    for _ in 0..3 {
        assert!(matches!(
            w.hub.login(&email, &pw("wrong password!"), None).await,
            Err(AppError::LoginFailed)
        ));
    }
    sign_in(&w, &email, PASSWORD).await.unwrap();
    for _ in 0..4 {
        assert!(matches!(
            w.hub.login(&email, &pw("wrong password!"), None).await,
            Err(AppError::LoginFailed)
        ));
    }
    sign_in(&w, &email, PASSWORD)
        .await
        .expect("four failures after a success must not lock");
    // Five in a row lock the account: the right password now gets the same answer.
    for _ in 0..5 {
        assert!(matches!(
            w.hub.login(&email, &pw("wrong password!"), None).await,
            Err(AppError::LoginFailed)
        ));
    }
    assert!(matches!(
        w.hub.login(&email, &pw(PASSWORD), None).await,
        Err(AppError::LoginFailed)
    ));
    w.clock.advance(Duration::minutes(14));
    assert!(matches!(
        w.hub.login(&email, &pw(PASSWORD), None).await,
        Err(AppError::LoginFailed)
    ));
    w.clock.advance(Duration::minutes(1) + Duration::seconds(1));
    sign_in(&w, &email, PASSWORD)
        .await
        .expect("the lock lasts 15 minutes");
}

lockstep_storage::on_both_stores!(sessions_expire_when_idle_and_at_their_absolute_limit);
async fn sessions_expire_when_idle_and_at_their_absolute_limit(t: TestStore) {
    let w = world(t).await;
    let (idle, _) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    w.clock.advance(Duration::minutes(29));
    w.hub
        .authenticate(&idle)
        .await
        .expect("29 idle minutes are fine");
    w.clock
        .advance(Duration::minutes(30) + Duration::seconds(1));
    assert!(matches!(
        w.hub.authenticate(&idle).await,
        Err(AppError::Unauthenticated)
    ));

    let (busy, _) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    // Active every 20 minutes: alive until 12 hours after sign-in, then over.
    for _ in 0..35 {
        w.clock.advance(Duration::minutes(20));
        w.hub
            .authenticate(&busy)
            .await
            .expect("an active session lives up to 12 hours");
    }
    w.clock
        .advance(Duration::minutes(20) + Duration::seconds(1));
    assert!(matches!(
        w.hub.authenticate(&busy).await,
        Err(AppError::Unauthenticated)
    ));
}

lockstep_storage::on_both_stores!(logout_password_change_deactivation_and_deletion_end_sessions);
async fn logout_password_change_deactivation_and_deletion_end_sessions(t: TestStore) {
    let w = world(t).await;
    let (admin_token, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let (other_admin_token, _) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();

    // Logout ends only that session.
    let (third, third_caller) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    w.hub.logout(&third_caller).await.unwrap();
    assert!(w.hub.authenticate(&third).await.is_err());
    assert!(w.hub.authenticate(&admin_token).await.is_ok());

    // A password change ends the other sessions, keeps this one, and needs the current password.
    let wrong = w
        .hub
        .change_password(
            &admin,
            &pw("not my password"),
            &pw("a new long passphrase"),
            true,
        )
        .await;
    assert!(
        matches!(
            wrong,
            Err(AppError::Invalid {
                field: "current_password",
                ..
            })
        ),
        "{wrong:?}"
    );
    w.hub
        .change_password(&admin, &pw(PASSWORD), &pw("a new long passphrase"), true)
        .await
        .unwrap();
    assert!(w.hub.authenticate(&other_admin_token).await.is_err());
    assert!(w.hub.authenticate(&admin_token).await.is_ok());
    assert!(matches!(
        w.hub.login(&w.admin_email, &pw(PASSWORD), None).await,
        Err(AppError::LoginFailed)
    ));

    // Deactivation and deletion end the member's sessions at once.
    let (ed_token, ed) = add_member(&w, &admin, "ed@acme.io", Role::Editor).await;
    w.hub
        .update_user(
            &admin,
            ed.user(),
            UserUpdate {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(w.hub.authenticate(&ed_token).await.is_err());
    assert!(matches!(
        w.hub.login("ed@acme.io", &pw(PASSWORD), None).await,
        Err(AppError::LoginFailed)
    ));
    let (vi_token, vi) = add_member(&w, &admin, "vi@acme.io", Role::Viewer).await;
    w.hub.delete_user(&admin, vi.user()).await.unwrap();
    assert!(w.hub.authenticate(&vi_token).await.is_err());

    // "Sign out everywhere" ends them all, this one included.
    w.hub.end_all_sessions(&admin, true).await.unwrap();
    assert!(w.hub.authenticate(&admin_token).await.is_err());

    // The last Administrator stays.
    let (_, admin) = sign_in(&w, &w.admin_email, "a new long passphrase")
        .await
        .unwrap();
    let refused = w
        .hub
        .update_user(
            &admin,
            admin.user(),
            UserUpdate {
                role: Some(Role::Viewer),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(refused, Err(AppError::Refused(_))), "{refused:?}");
    assert!(matches!(
        w.hub.delete_user(&admin, admin.user()).await,
        Err(AppError::Refused(_))
    ));
}

lockstep_storage::on_both_stores!(
    totp_is_asked_at_sign_in_refuses_replays_and_recovery_codes_work_once
);
async fn totp_is_asked_at_sign_in_refuses_replays_and_recovery_codes_work_once(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let enrolment = w.hub.start_totp(&admin).await.unwrap();
    let secret = TotpSecret::from_otpauth_uri(&enrolment.otpauth_uri).unwrap();
    let bad = w.hub.confirm_totp(&admin, "000000").await;
    assert!(matches!(bad, Err(AppError::Invalid { .. })), "{bad:?}");
    let code = secret.code_at(w.clock.now_for_test()).unwrap();
    let recovery = w.hub.confirm_totp(&admin, &code).await.unwrap();
    assert_eq!(recovery.codes.len(), 10);

    // The password alone is not enough any more.
    assert!(matches!(
        w.hub.login(&w.admin_email, &pw(PASSWORD), None).await,
        Err(AppError::TotpRequired)
    ));
    // The enrolment code cannot be replayed; the next step's code works once.
    let replay = w
        .hub
        .login(&w.admin_email, &pw(PASSWORD), Some(&code))
        .await;
    assert!(matches!(replay, Err(AppError::TotpRequired)), "{replay:?}");
    w.clock.advance(Duration::seconds(30));
    let next = secret.code_at(w.clock.now_for_test()).unwrap();
    w.hub
        .login(&w.admin_email, &pw(PASSWORD), Some(&next))
        .await
        .unwrap();
    assert!(matches!(
        w.hub
            .login(&w.admin_email, &pw(PASSWORD), Some(&next))
            .await,
        Err(AppError::TotpRequired)
    ));
    // A wrong password with a right code still fails as a sign-in failure.
    w.clock.advance(Duration::seconds(30));
    let third = secret.code_at(w.clock.now_for_test()).unwrap();
    assert!(matches!(
        w.hub
            .login(&w.admin_email, &pw("wrong password!"), Some(&third))
            .await,
        Err(AppError::LoginFailed)
    ));

    // A recovery code works once.
    let rc = recovery.codes[3].to_string();
    w.hub
        .login(&w.admin_email, &pw(PASSWORD), Some(&rc))
        .await
        .unwrap();
    assert!(matches!(
        w.hub.login(&w.admin_email, &pw(PASSWORD), Some(&rc)).await,
        Err(AppError::TotpRequired)
    ));

    // Removing TOTP needs a code; afterwards the password suffices again.
    let (_, admin) = {
        w.clock.advance(Duration::seconds(30));
        let c = secret.code_at(w.clock.now_for_test()).unwrap();
        let done = w
            .hub
            .login(&w.admin_email, &pw(PASSWORD), Some(&c))
            .await
            .unwrap();
        let caller = w
            .hub
            .authenticate(done.session_token.expose())
            .await
            .unwrap();
        ((), caller)
    };
    assert!(w.hub.remove_totp(&admin, "123456").await.is_err());
    w.hub.remove_totp(&admin, &recovery.codes[5]).await.unwrap();
    w.hub
        .login(&w.admin_email, &pw(PASSWORD), None)
        .await
        .unwrap();
}

lockstep_storage::on_both_stores!(
    password_reset_is_single_use_expires_ends_sessions_and_keeps_totp
);
async fn password_reset_is_single_use_expires_ends_sessions_and_keeps_totp(t: TestStore) {
    let w = world(t).await;
    let (token, _) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    // Unknown addresses get the same (silent) answer and no mail.
    let mails = w.mail.messages().len();
    w.hub
        .request_password_reset("nobody@acme.io")
        .await
        .unwrap();
    w.hub.run_queued_jobs().await;
    assert_eq!(w.mail.messages().len(), mails);

    w.hub.request_password_reset(&w.admin_email).await.unwrap();
    w.hub.run_queued_jobs().await;
    let mail = w.mail.messages().pop().unwrap();
    assert_eq!(mail.subject, "Reset your Lockstep password for Acme");
    assert!(
        mail.body.contains("your Lockstep account in Acme"),
        "{}",
        mail.body
    );
    let link = reset_token(&w.mail);
    let weak = w.hub.complete_password_reset(&link, &pw("123"), None).await;
    assert!(matches!(weak, Err(AppError::Invalid { .. })), "{weak:?}");
    w.hub
        .complete_password_reset(&link, &pw("another long passphrase"), None)
        .await
        .unwrap();
    assert!(
        w.hub.authenticate(&token).await.is_err(),
        "the reset must end every session"
    );
    let reuse = w
        .hub
        .complete_password_reset(&link, &pw("yet another passphrase"), None)
        .await;
    assert!(matches!(reuse, Err(AppError::NotFound(_))), "{reuse:?}");
    sign_in(&w, &w.admin_email, "another long passphrase")
        .await
        .unwrap();

    // Expired after 30 minutes.
    w.hub.request_password_reset(&w.admin_email).await.unwrap();
    w.hub.run_queued_jobs().await;
    let late = reset_token(&w.mail);
    w.clock
        .advance(Duration::minutes(30) + Duration::seconds(1));
    assert!(matches!(
        w.hub
            .complete_password_reset(&late, &pw("late long passphrase"), None)
            .await,
        Err(AppError::NotFound(_))
    ));

    // With TOTP, the reset still asks for a code.
    let (_, admin) = sign_in(&w, &w.admin_email, "another long passphrase")
        .await
        .unwrap();
    let secret =
        TotpSecret::from_otpauth_uri(&w.hub.start_totp(&admin).await.unwrap().otpauth_uri).unwrap();
    w.hub
        .confirm_totp(&admin, &secret.code_at(w.clock.now_for_test()).unwrap())
        .await
        .unwrap();
    w.hub.request_password_reset(&w.admin_email).await.unwrap();
    w.hub.run_queued_jobs().await;
    let mail = w.mail.messages().pop().unwrap();
    assert_eq!(mail.subject, "Reset your Lockstep password for Acme");
    assert!(
        mail.body.contains("your Lockstep account in Acme"),
        "{}",
        mail.body
    );
    let link = reset_token(&w.mail);
    let no_code = w
        .hub
        .complete_password_reset(&link, &pw("totp long passphrase"), None)
        .await;
    assert!(
        matches!(no_code, Err(AppError::TotpRequired)),
        "{no_code:?}"
    );
    w.clock.advance(Duration::seconds(30));
    let code = secret.code_at(w.clock.now_for_test()).unwrap();
    w.hub
        .complete_password_reset(&link, &pw("totp long passphrase"), Some(&code))
        .await
        .unwrap();
}

fn reset_token(mail: &MemoryMailer) -> String {
    let last = mail.messages().pop().unwrap();
    last.body
        .split_whitespace()
        .find_map(|w| w.split_once('#').map(|(_, t)| t.to_owned()))
        .unwrap()
}

lockstep_storage::on_both_stores!(api_tokens_act_as_their_user_and_stop_when_the_role_changes);
async fn api_tokens_act_as_their_user_and_stop_when_the_role_changes(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let (_, ed) = add_member(&w, &admin, "ed@acme.io", Role::Editor).await;
    for (days, ok) in [(0, false), (366, false), (30, true)] {
        assert_eq!(
            w.hub
                .create_api_token(
                    &ed,
                    "ci",
                    lockstep_domain::TokenScope::Manage,
                    lockstep_app::TokenExpiry::Days(days)
                )
                .await
                .is_ok(),
            ok,
            "{days}"
        );
    }
    let token = w
        .hub
        .create_api_token(
            &ed,
            "nightly",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(1),
        )
        .await
        .unwrap();
    let via_token = w.hub.authenticate(token.token.expose()).await.unwrap();
    assert_eq!(via_token.user(), ed.user());
    // A token cannot mint tokens or change the password.
    assert!(matches!(
        w.hub
            .create_api_token(
                &via_token,
                "x",
                lockstep_domain::TokenScope::Manage,
                lockstep_app::TokenExpiry::Days(1)
            )
            .await,
        Err(AppError::NotAllowedYet(_))
    ));
    let names: Vec<String> = w
        .hub
        .list_api_tokens(&ed)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["ci", "nightly"]);

    w.hub
        .update_user(
            &admin,
            ed.user(),
            UserUpdate {
                role: Some(Role::Viewer),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        w.hub.authenticate(token.token.expose()).await.is_err(),
        "a token outlived its user's role"
    );

    let (_, ed) = sign_in(&w, "ed@acme.io", PASSWORD).await.unwrap();
    let short = w
        .hub
        .create_api_token(
            &ed,
            "short",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(1),
        )
        .await
        .unwrap();
    w.clock.advance(Duration::days(1));
    assert!(
        w.hub.authenticate(short.token.expose()).await.is_err(),
        "an expired token still works"
    );
}

/// Whether `token` still authenticates.
async fn works(w: &World, token: &lockstep_app::NewApiToken) -> bool {
    w.hub.authenticate(token.token.expose()).await.is_ok()
}

/// The actions recorded on API token `token`, oldest first.
async fn token_events(w: &World, admin: &Caller, token: &lockstep_app::NewApiToken) -> Vec<String> {
    let mut actions: Vec<String> = w
        .hub
        .object_events(admin, "api_token", &token.view.id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.reverse();
    actions
}

lockstep_storage::on_both_stores!(account_recovery_revokes_api_tokens);
async fn account_recovery_revokes_api_tokens(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();

    // Signing out with an API token revokes that token, and only that one.
    let signed_out = w
        .hub
        .create_api_token(
            &admin,
            "ci",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    let other = w
        .hub
        .create_api_token(
            &admin,
            "nightly",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    let via_token = w.hub.authenticate(signed_out.token.expose()).await.unwrap();
    w.hub.logout(&via_token).await.unwrap();
    assert!(
        !works(&w, &signed_out).await,
        "a signed-out token still works"
    );
    assert!(works(&w, &other).await);
    assert_eq!(
        token_events(&w, &admin, &signed_out).await,
        ["api_token.created", "api_token.revoked"]
    );

    // A password change and "sign out everywhere" keep the tokens only when asked to.
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    w.hub
        .change_password(
            &admin,
            &pw(PASSWORD),
            &pw("a second long passphrase"),
            false,
        )
        .await
        .unwrap();
    assert!(works(&w, &other).await);
    w.hub
        .change_password(
            &admin,
            &pw("a second long passphrase"),
            &pw("a third long passphrase"),
            true,
        )
        .await
        .unwrap();
    assert!(!works(&w, &other).await, "a password change kept a token");
    assert_eq!(
        token_events(&w, &admin, &other).await,
        ["api_token.created", "api_token.revoked"]
    );
    let changed = w
        .hub
        .object_events(&admin, "user", &admin.user().to_string())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "user.password_changed")
        .unwrap();
    assert_eq!(
        changed.changes.get("api_tokens_revoked"),
        Some(&lockstep_app::FieldChange::Value {
            before: None,
            after: Some("1".to_owned())
        })
    );

    let kept = w
        .hub
        .create_api_token(
            &admin,
            "kept",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    w.hub.end_all_sessions(&admin, false).await.unwrap();
    assert!(works(&w, &kept).await);
    let (_, admin) = sign_in(&w, &w.admin_email, "a third long passphrase")
        .await
        .unwrap();
    w.hub.end_all_sessions(&admin, true).await.unwrap();
    assert!(
        !works(&w, &kept).await,
        "signing out everywhere kept a token"
    );

    // A password reset revokes every token, whatever anyone asked.
    let (_, admin) = sign_in(&w, &w.admin_email, "a third long passphrase")
        .await
        .unwrap();
    let first = w
        .hub
        .create_api_token(
            &admin,
            "one",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    let second = w
        .hub
        .create_api_token(
            &admin,
            "two",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    w.hub.request_password_reset(&w.admin_email).await.unwrap();
    w.hub.run_queued_jobs().await;
    w.hub
        .complete_password_reset(&reset_token(&w.mail), &pw("a fourth long passphrase"), None)
        .await
        .unwrap();
    assert!(!works(&w, &first).await && !works(&w, &second).await);
    let (_, admin) = sign_in(&w, &w.admin_email, "a fourth long passphrase")
        .await
        .unwrap();
    assert!(w.hub.list_api_tokens(&admin).await.unwrap().is_empty());
    assert_eq!(
        token_events(&w, &admin, &second).await,
        ["api_token.created", "api_token.revoked"]
    );
}

lockstep_storage::on_both_stores!(required_totp_confines_members_to_enrolment);
async fn required_totp_confines_members_to_enrolment(t: TestStore) {
    let w = world(t).await;
    let (token, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    w.hub
        .update_organization_settings(
            &admin,
            SettingsUpdate {
                require_totp: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let admin = w.hub.authenticate(&token).await.unwrap();
    assert!(admin.member.must_enrol_totp);
    assert!(matches!(
        w.hub.list_users(&admin).await,
        Err(AppError::TotpEnrolmentRequired)
    ));
    assert!(w.hub.me(&admin).await.unwrap().must_enrol_totp);
    let secret =
        TotpSecret::from_otpauth_uri(&w.hub.start_totp(&admin).await.unwrap().otpauth_uri).unwrap();
    w.hub
        .confirm_totp(&admin, &secret.code_at(w.clock.now_for_test()).unwrap())
        .await
        .unwrap();
    let admin = w.hub.authenticate(&token).await.unwrap();
    assert_eq!(w.hub.list_users(&admin).await.unwrap().len(), 1);
}

/// The manual clock's time, for computing TOTP codes in tests.
trait NowForTest {
    fn now_for_test(&self) -> time::OffsetDateTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> time::OffsetDateTime {
        lockstep_app::Clock::now(self)
    }
}

lockstep_storage::on_both_stores!(
    administrators_list_resend_revoke_and_replace_pending_invitations
);
async fn administrators_list_resend_revoke_and_replace_pending_invitations(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let first = w
        .hub
        .invite_user(&admin, "vi@acme.io", Role::Viewer)
        .await
        .unwrap();
    assert!(!first.replaced);
    let other = w
        .hub
        .invite_user(&admin, "ed@acme.io", Role::Editor)
        .await
        .unwrap();

    // A second invitation for the same address replaces the first and says so.
    let second = w
        .hub
        .invite_user(&admin, "VI@acme.io", Role::Editor)
        .await
        .unwrap();
    assert!(second.replaced);
    let old = w
        .hub
        .accept_invitation(first.token.expose(), &pw(PASSWORD), "Vi")
        .await;
    assert!(matches!(old, Err(AppError::NotFound(_))), "{old:?}");

    // The list shows what is pending, with who sent it; reading it is audited.
    let list = w.hub.list_invitations(&admin).await.unwrap();
    let rows: Vec<_> = list
        .iter()
        .map(|i| (i.id, i.email.as_str(), i.role, i.invited_by_name.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            (other.id, "ed@acme.io", Role::Editor, Some("Ada")),
            (second.id, "VI@acme.io", Role::Editor, Some("Ada")),
        ]
    );
    assert_eq!(list[0].invited_by, Some(admin.user()));
    assert_eq!(list[0].expires_at, list[0].created_at + Duration::days(7));
    let listed = w
        .hub
        .object_events(&admin, "organization", &admin.organization().to_string())
        .await
        .unwrap();
    assert!(listed.iter().any(|e| e.action == "invitations.listed"));

    // Resending mails a new token, renews the validity, and the old token stops working.
    w.clock.advance(Duration::days(6));
    let before = w.mail.messages().len();
    let resent = w.hub.resend_invitation(&admin, other.id).await.unwrap();
    let sent = w.mail.messages();
    assert_eq!(sent.len(), before + 1);
    let mail = sent.last().unwrap();
    assert_eq!(mail.to, "ed@acme.io");
    assert_eq!(mail.subject, "Ada invited you to Acme on Lockstep");
    assert!(mail.body.contains(resent.token.expose()));
    assert_ne!(resent.token.expose(), other.token.expose());
    let stale = w
        .hub
        .accept_invitation(other.token.expose(), &pw(PASSWORD), "Ed")
        .await;
    assert!(matches!(stale, Err(AppError::NotFound(_))), "{stale:?}");
    w.clock.advance(Duration::days(2));
    w.hub
        .accept_invitation(resent.token.expose(), &pw(PASSWORD), "Ed")
        .await
        .unwrap();

    // Revoked: its token then fails like an unknown one, and it is no longer listed.
    w.hub.revoke_invitation(&admin, second.id).await.unwrap();
    let revoked = w
        .hub
        .accept_invitation(second.token.expose(), &pw(PASSWORD), "Vi")
        .await;
    assert!(matches!(revoked, Err(AppError::NotFound(_))), "{revoked:?}");
    assert!(w.hub.list_invitations(&admin).await.unwrap().is_empty());
    let again = w.hub.revoke_invitation(&admin, second.id).await;
    assert!(matches!(again, Err(AppError::NotFound(_))), "{again:?}");
    let events = w
        .hub
        .object_events(&admin, "invitation", &second.id.to_string())
        .await
        .unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["invitation.revoked", "invitation.created"]);
    assert_eq!(events[0].actor_id, Some(admin.user().to_string()));

    // Others may not: 403 for an Editor, and nothing changed.
    let (_, ed) = sign_in(&w, "ed@acme.io", PASSWORD).await.unwrap();
    let pending = w
        .hub
        .invite_user(&admin, "late@acme.io", Role::Viewer)
        .await
        .unwrap();
    assert!(matches!(
        w.hub.list_invitations(&ed).await,
        Err(AppError::Forbidden { .. })
    ));
    assert!(matches!(
        w.hub.revoke_invitation(&ed, pending.id).await,
        Err(AppError::Forbidden { .. })
    ));
    assert!(matches!(
        w.hub.resend_invitation(&ed, pending.id).await,
        Err(AppError::Forbidden { .. })
    ));
    w.hub
        .accept_invitation(pending.token.expose(), &pw(PASSWORD), "Late")
        .await
        .unwrap();
}

lockstep_storage::on_both_stores!(an_administrator_resets_a_members_second_factor);
async fn an_administrator_resets_a_members_second_factor(t: TestStore) {
    let w = world(t).await;
    let (_, admin) = sign_in(&w, &w.admin_email, PASSWORD).await.unwrap();
    let (ed_token, ed) = add_member(&w, &admin, "ed@acme.io", Role::Editor).await;
    let enrolment = w.hub.start_totp(&ed).await.unwrap();
    let secret = TotpSecret::from_otpauth_uri(&enrolment.otpauth_uri).unwrap();
    let code = secret.code_at(w.clock.now_for_test()).unwrap();
    w.hub.confirm_totp(&ed, &code).await.unwrap();
    assert!(matches!(
        w.hub.login("ed@acme.io", &pw(PASSWORD), None).await,
        Err(AppError::TotpRequired)
    ));
    w.hub
        .update_organization_settings(
            &admin,
            SettingsUpdate {
                require_totp: Some(true),
                ..SettingsUpdate::default()
            },
        )
        .await
        .unwrap();

    // Only Administrators.
    assert!(matches!(
        w.hub.reset_user_totp(&ed, ed.user()).await,
        Err(AppError::Forbidden { .. })
    ));
    w.hub.reset_user_totp(&admin, ed.user()).await.unwrap();

    // Their sessions ended; TOTP and recovery codes are gone; they must enrol again.
    assert!(w.hub.authenticate(&ed_token).await.is_err());
    // The password alone signs in now (no code is asked), confined to enrolment.
    let (_, ed) = sign_in(&w, "ed@acme.io", PASSWORD).await.unwrap();
    assert!(ed.member.must_enrol_totp);
    assert!(
        !w.hub
            .get_user(&admin, ed.user())
            .await
            .unwrap()
            .totp_enabled
    );

    let events = w
        .hub
        .object_events(&admin, "user", &ed.user().to_string())
        .await
        .unwrap();
    let reset = events
        .iter()
        .find(|e| e.action == "user.totp_reset")
        .unwrap();
    assert_eq!(reset.actor_id, Some(admin.user().to_string()));
}
