//! Teams: members of one organization that data policies name together (Administrators manage
//! them). A member may be in any number of teams. Names are sealed under the organization's key
//! with a keyed index for uniqueness, as connection names are; every change is audited with
//! before and after.

use crate::audit::{Event, FieldChange};
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::{TeamId, UserId};
use lockstep_policy::Action;
use lockstep_storage::teams::{self, StoredTeam};
use lockstep_storage::users::UserStatus;
use lockstep_storage::{StoreError, users};
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest team name, in characters.
pub const MAX_TEAM_NAME: usize = 100;
/// At most this many teams per organization.
pub const MAX_TEAMS: usize = 500;

/// A team and its members.
#[derive(Debug, Clone)]
pub struct TeamView {
    pub id: TeamId,
    pub name: String,
    /// Members as (id, display name), sorted by name.
    pub members: Vec<(UserId, String)>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn team_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    let invalid = |reason: &str| AppError::Invalid {
        field: "name",
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.chars().count() > MAX_TEAM_NAME {
        return Err(invalid("must be at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(name.to_owned())
}

impl Hub {
    async fn team_for(
        &self,
        caller: &Caller,
        action: Action,
        id: TeamId,
    ) -> Result<StoredTeam, AppError> {
        let mut conn = self.store.read().await?;
        let team = teams::get(&mut conn, caller.organization(), id)
            .await?
            .ok_or(AppError::NotFound("team"))?;
        drop(conn);
        self.authorize_in_organization(caller, action)?;
        Ok(team)
    }

    async fn team_view(&self, team: StoredTeam) -> Result<TeamView, AppError> {
        let org = team.organization_id;
        let name = self
            .open_text(
                org,
                "team",
                &team.id.to_string(),
                "name",
                &team.name_ciphertext,
            )
            .await?;
        let mut conn = self.store.read().await?;
        let memberships = teams::memberships(&mut conn, org).await?;
        drop(conn);
        let mut members = Vec::new();
        for (t, user) in memberships {
            if t == team.id {
                members.push((user, self.display_name(org, user).await?));
            }
        }
        members.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
        Ok(TeamView {
            id: team.id,
            name,
            members,
            created_at: team.created_at,
            updated_at: team.updated_at,
        })
    }

    /// A member's display name (empty for a user that is gone).
    async fn display_name(
        &self,
        org: lockstep_domain::OrganizationId,
        user: UserId,
    ) -> Result<String, AppError> {
        let mut conn = self.store.read().await?;
        let stored = users::get(&mut conn, org, user).await?;
        drop(conn);
        match stored {
            Some(u) => {
                self.open_text(
                    org,
                    "user",
                    &u.id.to_string(),
                    "display_name",
                    &u.display_name_ciphertext,
                )
                .await
            }
            None => Ok(String::new()),
        }
    }

    /// The organization's teams, sorted by name (Administrators).
    pub async fn list_teams(&self, caller: &Caller) -> Result<Vec<TeamView>, AppError> {
        self.authorize_in_organization(caller, Action::ReadTeams)?;
        let mut conn = self.store.read().await?;
        let list = teams::list(&mut conn, caller.organization()).await?;
        drop(conn);
        let mut views = Vec::with_capacity(list.len());
        for team in list {
            views.push(self.team_view(team).await?);
        }
        views.sort_by_cached_key(|t| (t.name.to_lowercase(), t.id.to_string()));
        Ok(views)
    }

    pub async fn get_team(&self, caller: &Caller, id: TeamId) -> Result<TeamView, AppError> {
        let team = self.team_for(caller, Action::ReadTeams, id).await?;
        self.team_view(team).await
    }

    /// Creates a team (Administrators); its name is unique in the organization.
    pub async fn create_team(&self, caller: &Caller, name: &str) -> Result<TeamView, AppError> {
        self.authorize_in_organization(caller, Action::ManageTeams)?;
        let org = caller.organization();
        let name = team_name(name)?;
        let mut conn = self.store.read().await?;
        let count = teams::list(&mut conn, org).await?.len();
        drop(conn);
        if count >= MAX_TEAMS {
            return Err(AppError::Refused(
                "the organization has 500 teams, the most it may have",
            ));
        }
        let id = TeamId::from_uuid(Uuid::now_v7());
        let now = self.clock.now();
        let team = StoredTeam {
            id,
            organization_id: org,
            name: self.keyed_name_index(org, "team", &name)?,
            name_ciphertext: self
                .seal_field(org, "team", &id.to_string(), "name", name.as_bytes())
                .await?,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.write().await?;
        teams::insert(&mut tx, &team).await?;
        let event = Event::new(caller.actor(), "team.created", "team", id)
            .change("name", FieldChange::value(None::<String>, Some(&name)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.team_view(team).await
    }

    /// Renames a team (Administrators).
    pub async fn rename_team(
        &self,
        caller: &Caller,
        id: TeamId,
        name: &str,
    ) -> Result<TeamView, AppError> {
        let mut team = self.team_for(caller, Action::ManageTeams, id).await?;
        let org = team.organization_id;
        let name = team_name(name)?;
        let before = self.team_view(team.clone()).await?.name;
        team.name = self.keyed_name_index(org, "team", &name)?;
        team.name_ciphertext = self
            .seal_field(org, "team", &id.to_string(), "name", name.as_bytes())
            .await?;
        team.updated_at = self.clock.now();
        let mut tx = self.store.write().await?;
        teams::rename(&mut tx, &team).await?;
        let event = Event::new(caller.actor(), "team.renamed", "team", id)
            .change("name", FieldChange::value(Some(&before), Some(&name)));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.team_view(team).await
    }

    /// Deletes a team and its memberships (Administrators). Policy rules that name it stop
    /// applying to anybody (they are removed from the policies in the same transaction).
    pub async fn delete_team(&self, caller: &Caller, id: TeamId) -> Result<(), AppError> {
        let team = self.team_for(caller, Action::ManageTeams, id).await?;
        let org = team.organization_id;
        let view = self.team_view(team).await?;
        let mut tx = self.store.write().await?;
        let removed_rules = self.forget_team_in_policies(&mut tx, org, id).await?;
        teams::delete(&mut tx, org, id).await?;
        let event = Event::new(caller.actor(), "team.deleted", "team", id)
            .change("name", FieldChange::value(Some(&view.name), None::<String>))
            .change(
                "members",
                FieldChange::value(Some(view.members.len()), None::<usize>),
            )
            .change(
                "policy_rules",
                FieldChange::value(Some(removed_rules), Some(0)),
            );
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Adds a member of the organization to a team (Administrators). A user of another
    /// organization, or one that does not exist, is refused naming `user_id`.
    pub async fn add_team_member(
        &self,
        caller: &Caller,
        id: TeamId,
        user: UserId,
    ) -> Result<TeamView, AppError> {
        let team = self.team_for(caller, Action::ManageTeams, id).await?;
        let org = team.organization_id;
        let mut tx = self.store.write().await?;
        let member = users::get(&mut tx, org, user).await?;
        if !member.is_some_and(|u| u.status == UserStatus::Active) {
            return Err(AppError::Invalid {
                field: "user_id",
                reason: "is not an active member of this organization".to_owned(),
            });
        }
        if teams::add_member(&mut tx, org, id, user, self.clock.now()).await? {
            let event = Event::new(caller.actor(), "team.member_added", "team", id)
                .change("user_id", FieldChange::value(None::<String>, Some(user)));
            self.record(&mut tx, org, event).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        self.team_view(team).await
    }

    /// Removes a member from a team (Administrators); 404 when they were not in it.
    pub async fn remove_team_member(
        &self,
        caller: &Caller,
        id: TeamId,
        user: UserId,
    ) -> Result<TeamView, AppError> {
        let team = self.team_for(caller, Action::ManageTeams, id).await?;
        let org = team.organization_id;
        let mut tx = self.store.write().await?;
        if !teams::remove_member(&mut tx, org, id, user).await? {
            return Err(AppError::NotFound("team member"));
        }
        let event = Event::new(caller.actor(), "team.member_removed", "team", id)
            .change("user_id", FieldChange::value(Some(user), None::<String>));
        self.record(&mut tx, org, event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.team_view(team).await
    }
}
