//! MemoryMailer: what other crates' tests rely on.

use lockstep_mail::{MailError, Mailer, MemoryMailer, Message};

use crate::{assert_no_secrets, reset_message};

#[tokio::test]
async fn memory_mailer_keeps_messages_in_order() {
    let mailer = MemoryMailer::new();
    let dyn_mailer: &dyn Mailer = &mailer;
    dyn_mailer.send(reset_message()).await.unwrap();
    let second = Message {
        subject: "Invitation".to_owned(),
        ..reset_message()
    };
    dyn_mailer.send(second.clone()).await.unwrap();
    assert_eq!(mailer.messages(), vec![reset_message(), second]);
    assert_no_secrets(&format!("{mailer:?}"));
}

#[tokio::test]
async fn memory_mailer_refuses_what_real_mailers_refuse() {
    let mailer = MemoryMailer::new();
    let bad = Message {
        to: "not an address".to_owned(),
        ..reset_message()
    };
    assert!(matches!(
        mailer.send(bad).await,
        Err(MailError::InvalidAddress)
    ));
    assert!(mailer.messages().is_empty());
}
