//! One e-mail address, several organizations: addresses are unique per organization, sign-in
//! asks which organization only someone who knows the password, password reset mails each
//! account, and nothing about another organization shows in any answer. Work an unknown
//! address would not cause is done after the answer.

use lockstep_app::{AppError, Caller, Hub, HubOptions, MailOutcome, Password, SystemClock};
use lockstep_domain::{OrganizationId, Role};
use lockstep_mail::{MailError, Mailer, MemoryMailer, Message, SendFuture};
use lockstep_storage::testing::TestStore;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "correct horse battery staple";
const OTHER_PASSWORD: &str = "another long passphrase";

fn pw(text: &str) -> Password {
    Password::new(text.to_owned())
}

struct Two {
    _t: TestStore,
    hub: Arc<Hub>,
    mail: Arc<MemoryMailer>,
    alpha: (OrganizationId, Caller),
    beta: (OrganizationId, Caller),
}

async fn admin_of(
    hub: &Hub,
    op: &lockstep_app::Operator,
    name: &str,
    email: &str,
) -> (OrganizationId, Caller) {
    let org = hub.create_organization(op, name, email).await.unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw(PASSWORD), "Admin")
        .await
        .unwrap();
    let done = hub.login(email, &pw(PASSWORD), None).await.unwrap();
    (
        org.id,
        hub.authenticate(done.session_token.expose()).await.unwrap(),
    )
}

async fn two(t: TestStore, mailer: Option<Arc<dyn Mailer>>) -> Two {
    let mail = Arc::new(MemoryMailer::new());
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(HubOptions {
        mailer: Some(mailer.unwrap_or_else(|| mail.clone())),
        password_permits: 2,
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let alpha = admin_of(&hub, &op, "Alpha", "admin@alpha.io").await;
    let beta = admin_of(&hub, &op, "Beta", "admin@beta.io").await;
    Two {
        _t: t,
        hub,
        mail,
        alpha,
        beta,
    }
}

/// Invites `email` into the admin's organization and accepts with `password`.
async fn join(hub: &Hub, admin: &Caller, email: &str, password: &str) {
    let inv = hub.invite_user(admin, email, Role::Editor).await.unwrap();
    hub.accept_invitation(inv.token.expose(), &pw(password), "Sam")
        .await
        .unwrap();
}

lockstep_storage::on_both_stores!(two_organizations_invite_the_same_address_in_any_case);
async fn two_organizations_invite_the_same_address_in_any_case(t: TestStore) {
    let w = two(t, None).await;
    // Alpha's pending invitation does not stop Beta, nor Beta's member Alpha.
    let alpha_inv = w
        .hub
        .invite_user(&w.alpha.1, "Sam@Example.com", Role::Editor)
        .await
        .unwrap();
    let beta_inv = w
        .hub
        .invite_user(&w.beta.1, "sam@example.COM", Role::Viewer)
        .await
        .unwrap();
    w.hub
        .accept_invitation(beta_inv.token.expose(), &pw(PASSWORD), "Sam B")
        .await
        .unwrap();
    // Alpha's invitation still works after Beta's was accepted (it was not squatted).
    w.hub
        .accept_invitation(alpha_inv.token.expose(), &pw(OTHER_PASSWORD), "Sam A")
        .await
        .unwrap();
    // Within one organization the address stays unique, in any letter case.
    let dup = w
        .hub
        .invite_user(&w.alpha.1, "SAM@example.com", Role::Viewer)
        .await;
    assert!(matches!(dup, Err(AppError::Conflict(_))), "{dup:?}");
    // Each invitation mail went to the address; a memory mailer is a mail server.
    assert_eq!(alpha_inv.mail, MailOutcome::Sent);
    assert!(alpha_inv.token_for_inviter().is_none());
}

lockstep_storage::on_both_stores!(a_member_of_two_organizations_chooses_only_with_the_password);
async fn a_member_of_two_organizations_chooses_only_with_the_password(t: TestStore) {
    let w = two(t, None).await;
    join(&w.hub, &w.alpha.1, "sam@example.com", PASSWORD).await;
    join(&w.hub, &w.beta.1, "SAM@example.com", PASSWORD).await;

    // The same password in both: a choice of exactly those two, ids and names.
    let ambiguous = w.hub.login("Sam@example.com", &pw(PASSWORD), None).await;
    let Err(AppError::ChooseOrganization(choices)) = ambiguous else {
        panic!("{ambiguous:?}");
    };
    let offered: Vec<_> = choices.iter().map(|c| (c.id, c.name.as_str())).collect();
    assert_eq!(offered, vec![(w.alpha.0, "Alpha"), (w.beta.0, "Beta")]);
    // Naming one signs into that one.
    let done = w
        .hub
        .login_to("sam@example.com", &pw(PASSWORD), None, Some(w.beta.0))
        .await
        .unwrap();
    let caller = w
        .hub
        .authenticate(done.session_token.expose())
        .await
        .unwrap();
    assert_eq!(caller.organization(), w.beta.0);
    assert_eq!(caller.member.role, Role::Editor);

    // A wrong password reveals nothing: the answer of an unknown address.
    let wrong = w
        .hub
        .login("sam@example.com", &pw("not the password"), None)
        .await;
    assert!(matches!(wrong, Err(AppError::LoginFailed)), "{wrong:?}");
    let named = w
        .hub
        .login_to(
            "sam@example.com",
            &pw("not the password"),
            None,
            Some(w.alpha.0),
        )
        .await;
    assert!(matches!(named, Err(AppError::LoginFailed)), "{named:?}");
    // Naming an organization the address is not in is like a wrong password, even with the
    // right one.
    let outsider = w
        .hub
        .login_to("admin@alpha.io", &pw(PASSWORD), None, Some(w.beta.0))
        .await;
    assert!(
        matches!(outsider, Err(AppError::LoginFailed)),
        "{outsider:?}"
    );
}

lockstep_storage::on_both_stores!(with_different_passwords_the_matching_account_signs_in);
async fn with_different_passwords_the_matching_account_signs_in(t: TestStore) {
    let w = two(t, None).await;
    join(&w.hub, &w.alpha.1, "kim@example.com", PASSWORD).await;
    join(&w.hub, &w.beta.1, "kim@example.com", OTHER_PASSWORD).await;
    for (password, org) in [(PASSWORD, w.alpha.0), (OTHER_PASSWORD, w.beta.0)] {
        let done = w
            .hub
            .login("kim@example.com", &pw(password), None)
            .await
            .unwrap();
        let caller = w
            .hub
            .authenticate(done.session_token.expose())
            .await
            .unwrap();
        assert_eq!(caller.organization(), org);
    }
    // A failure counts on neither account when one of them matched.
    w.hub.run_queued_jobs().await;
    let members = w.hub.list_users(&w.beta.1).await.unwrap();
    assert!(members.iter().any(|m| m.email == "kim@example.com"));
}

lockstep_storage::on_both_stores!(a_reset_mails_each_account_of_the_address_after_the_answer);
async fn a_reset_mails_each_account_of_the_address_after_the_answer(t: TestStore) {
    let w = two(t, None).await;
    join(&w.hub, &w.alpha.1, "sam@example.com", PASSWORD).await;
    join(&w.hub, &w.beta.1, "sam@example.com", PASSWORD).await;
    let before = w.mail.messages().len();
    w.hub
        .request_password_reset("SAM@example.com")
        .await
        .unwrap();
    w.hub
        .request_password_reset("nobody@example.com")
        .await
        .unwrap();
    assert_eq!(w.mail.messages().len(), before, "mailed before the answer");
    w.hub.run_queued_jobs().await;
    let mails = w.mail.messages();
    let resets: Vec<_> = mails[before..].iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        resets,
        vec![
            "Reset your Lockstep password for Alpha",
            "Reset your Lockstep password for Beta"
        ]
    );
    // Each link resets its own account only.
    let token = |m: &Message| {
        m.body
            .split("/reset-password#")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    w.hub
        .complete_password_reset(&token(&mails[before + 1]), &pw(OTHER_PASSWORD), None)
        .await
        .unwrap();
    let done = w
        .hub
        .login("sam@example.com", &pw(OTHER_PASSWORD), None)
        .await
        .unwrap();
    let caller = w
        .hub
        .authenticate(done.session_token.expose())
        .await
        .unwrap();
    assert_eq!(caller.organization(), w.beta.0);
    let done = w
        .hub
        .login("sam@example.com", &pw(PASSWORD), None)
        .await
        .unwrap();
    let caller = w
        .hub
        .authenticate(done.session_token.expose())
        .await
        .unwrap();
    assert_eq!(caller.organization(), w.alpha.0);
}

/// A mailer that holds every message until released, counting the calls.
#[derive(Debug, Default)]
struct HeldMailer {
    calls: AtomicUsize,
    released: tokio::sync::Notify,
    open: AtomicBool,
    sent: Mutex<Vec<Message>>,
}

impl HeldMailer {
    fn release(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.released.notify_waiters();
    }
}

impl Mailer for HeldMailer {
    fn send<'a>(&'a self, message: Message) -> SendFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            while !self.open.load(Ordering::SeqCst) {
                let released = self.released.notified();
                if self.open.load(Ordering::SeqCst) {
                    break;
                }
                released.await;
            }
            self.sent.lock().unwrap().push(message);
            Ok::<(), MailError>(())
        })
    }
}

async fn until(check: impl Fn() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("never happened");
}

lockstep_storage::on_both_stores!(the_reset_answer_does_not_wait_for_the_mailer);
async fn the_reset_answer_does_not_wait_for_the_mailer(t: TestStore) {
    let held = Arc::new(HeldMailer::default());
    // Organizations are created with an open mailer, then it holds.
    held.open.store(true, Ordering::SeqCst);
    let w = two(t, Some(held.clone())).await;
    held.open.store(false, Ordering::SeqCst);
    let calls = held.calls.load(Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let runner = tokio::spawn(Arc::clone(&w.hub).run_jobs(Arc::clone(&stop)));

    // Answered while the mailer holds the message: the answer never waited for it.
    w.hub
        .request_password_reset("admin@alpha.io")
        .await
        .unwrap();
    until(|| held.calls.load(Ordering::SeqCst) == calls + 1).await;
    assert!(held.sent.lock().unwrap().len() < calls + 1);
    // A sign-in is not held up by a mail in progress either.
    w.hub
        .login("admin@beta.io", &pw(PASSWORD), None)
        .await
        .unwrap();
    held.release();
    until(|| held.sent.lock().unwrap().len() == calls + 1).await;
    let sent = held.sent.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent.subject, "Reset your Lockstep password for Alpha");
    stop.store(true, Ordering::SeqCst);
    runner.await.unwrap();
}

/// A mail server that refuses everything.
#[derive(Debug)]
struct RefusingMailer;

impl Mailer for RefusingMailer {
    fn send<'a>(&'a self, _message: Message) -> SendFuture<'a> {
        Box::pin(async { Err(MailError::Send("refused".into())) })
    }
}

lockstep_storage::on_both_stores!(a_failed_invitation_mail_is_kept_and_listed);
async fn a_failed_invitation_mail_is_kept_and_listed(t: TestStore) {
    let w = two(t, Some(Arc::new(RefusingMailer))).await;
    let inv = w
        .hub
        .invite_user(&w.alpha.1, "vi@alpha.io", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(inv.mail, MailOutcome::Failed);
    assert!(
        inv.token_for_inviter().is_none(),
        "the token went to the inviter"
    );
    let list = w.hub.list_invitations(&w.alpha.1).await.unwrap();
    let listed = list.iter().find(|i| i.id == inv.id).unwrap();
    assert_eq!(listed.mail, MailOutcome::Failed);
    let resent = w.hub.resend_invitation(&w.alpha.1, inv.id).await.unwrap();
    assert_eq!(resent.mail, MailOutcome::Failed);
    assert!(resent.token_for_inviter().is_none());
}
