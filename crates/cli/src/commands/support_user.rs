//! `lockstep support-user add|list|remove` (operator token).

use crate::args::{Format, SupportUserCommand};
use crate::client::ApiClient;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
struct SupportUser {
    id: String,
    email: String,
    active: bool,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(flatten)]
    user: SupportUser,
    setup_token: String,
}

#[derive(Debug, Deserialize)]
struct SupportUserList {
    support_users: Vec<SupportUser>,
}

pub async fn run(command: SupportUserCommand) -> anyhow::Result<()> {
    match command {
        SupportUserCommand::Add { email, auth } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            let body = serde_json::json!({ "email": email });
            let created: Created = client.post("/api/v1/sys/support-users", &body).await?;
            match auth.client.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "id": created.user.id, "setup_token": created.setup_token })
                ),
                Format::Text => {
                    println!("Support account added: {}", created.user.id);
                    println!(
                        "Setup token (shown once; also mailed): open /support/setup#{} on the hub \
                         within 7 days to choose a password and enrol TOTP.",
                        created.setup_token
                    );
                }
            }
        }
        SupportUserCommand::List { auth } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            let list: SupportUserList = client.get("/api/v1/sys/support-users").await?;
            match auth.client.format {
                Format::Json => println!("{}", serde_json::to_string(&list.support_users)?),
                Format::Text if list.support_users.is_empty() => {
                    println!("No support accounts yet.");
                }
                Format::Text => {
                    for user in &list.support_users {
                        let state = if user.active {
                            "active"
                        } else {
                            "setup pending"
                        };
                        println!("{}  {}  {state}", user.id, user.email);
                    }
                }
            }
        }
        SupportUserCommand::Remove { id, auth } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            if uuid::Uuid::parse_str(&id).is_err() {
                anyhow::bail!(
                    "{id:?} is not a support account id (see `lockstep support-user list`)"
                );
            }
            client
                .delete(&format!("/api/v1/sys/support-users/{id}"))
                .await?;
            println!("Support account {id} removed; its sessions ended.");
        }
    }
    Ok(())
}
