//! `lockstep org create|list|delete` (operator token).

use crate::args::{Format, OrgCommand};
use crate::client::ApiClient;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
    invitation_token: String,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Organization {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct OrganizationList {
    organizations: Vec<Organization>,
}

pub async fn run(command: OrgCommand) -> anyhow::Result<()> {
    match command {
        OrgCommand::Create {
            name,
            admin_email,
            auth,
        } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            let body = serde_json::json!({ "name": name, "admin_email": admin_email });
            let created: Created = client.post("/api/v1/sys/organizations", &body).await?;
            match auth.client.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "id": created.id, "invitation_token": created.invitation_token })
                ),
                Format::Text => {
                    println!("Organization created: {}", created.id);
                    println!(
                        "Invitation token for its first Administrator (shown once): {}",
                        created.invitation_token
                    );
                }
            }
        }
        OrgCommand::List { auth } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            let list: OrganizationList = client.get("/api/v1/sys/organizations").await?;
            match auth.client.format {
                Format::Json => println!("{}", serde_json::to_string(&list.organizations)?),
                Format::Text if list.organizations.is_empty() => println!("No organizations yet."),
                Format::Text => {
                    for org in &list.organizations {
                        println!("{}  {}", org.id, org.name);
                    }
                }
            }
        }
        OrgCommand::Delete { id, auth } => {
            let client = ApiClient::new(&auth.client, Some(super::operator_token(auth.token)?))?;
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                anyhow::bail!("{id:?} is not an organization id (see `lockstep org list`)");
            }
            client
                .delete(&format!("/api/v1/sys/organizations/{id}"))
                .await?;
            println!("Organization {id} deleted; its keys are destroyed.");
        }
    }
    Ok(())
}
