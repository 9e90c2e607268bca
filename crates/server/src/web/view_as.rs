//! "View as": on the pages that show records (a data set, a run's rejected records, a
//! connection's sample, the policies page's preview), an Administrator picks a member or a team
//! and the page shows the records as the data policies show them to that member or team
//! (`?view_as=user:ID` or `team:ID`, read by the use cases' `_as` variants). The picker is a
//! small GET form; a banner says whose eyes the page is for.

use super::page::WebError;
use super::session::SignedIn;
use crate::AppState;
use lockstep_app::ViewAs;

/// The title of an empty cell whose field a data policy hides.
pub(crate) const HIDDEN_TITLE: &str = "hidden by a data policy";

/// A member or a team in the picker.
pub(crate) struct ViewAsOption {
    pub value: String,
    pub label: String,
}

/// The picker and, when in effect, the banner.
pub(crate) struct ViewAsPicker {
    /// Where the form goes (the page itself).
    pub action: String,
    /// The page's other query parameters, kept by the form.
    pub hidden: Vec<(String, String)>,
    pub members: Vec<ViewAsOption>,
    pub teams: Vec<ViewAsOption>,
    /// The `view_as` in effect ("" for myself).
    pub selected: String,
    /// "Viewing as …" when in effect.
    pub banner: Option<String>,
}

/// `?view_as=` as the use cases take it: empty is the caller themself; anything that is not
/// `user:ID` or `team:ID` is a 400 page.
pub(crate) fn parse(text: Option<&str>) -> Result<Option<ViewAs>, WebError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => ViewAs::parse(text)
            .map(Some)
            .map_err(|_| WebError::bad_request("`view_as` must be a member or a team.")),
    }
}

/// The picker for an Administrator (`None` for anybody else, who may not view as another):
/// the organization's members and teams by name; the banner names the one chosen.
pub(crate) async fn picker(
    state: &AppState,
    signed: &SignedIn,
    action: String,
    hidden: Vec<(String, String)>,
    view_as: Option<ViewAs>,
) -> Result<Option<ViewAsPicker>, WebError> {
    if !signed.nav.can_view_as() {
        return Ok(None);
    }
    let mut names = state.hub.member_names(&signed.caller).await?;
    names.sort_by_cached_key(|(id, name)| (name.to_lowercase(), id.to_string()));
    let teams = state.hub.list_teams(&signed.caller).await?;
    let (selected, banner) = match view_as {
        None => (String::new(), None),
        Some(ViewAs::User(id)) => {
            let name = names
                .iter()
                .find(|(u, _)| *u == id)
                .map_or_else(|| "a former member".to_owned(), |(_, n)| n.clone());
            (
                format!("user:{id}"),
                Some(format!(
                    "Viewing as {name}: records and values as the data policies show them to this member."
                )),
            )
        }
        Some(ViewAs::Team(id)) => {
            let name = teams
                .iter()
                .find(|t| t.id == id)
                .map_or_else(|| "a team".to_owned(), |t| t.name.clone());
            (
                format!("team:{id}"),
                Some(format!(
                    "Viewing as {name}: records and values as the data policies show them to this team."
                )),
            )
        }
    };
    Ok(Some(ViewAsPicker {
        action,
        hidden,
        members: names
            .into_iter()
            .map(|(id, name)| ViewAsOption {
                value: format!("user:{id}"),
                label: name,
            })
            .collect(),
        teams: teams
            .into_iter()
            .map(|t| ViewAsOption {
                value: format!("team:{}", t.id),
                label: t.name,
            })
            .collect(),
        selected,
        banner,
    }))
}

/// "N records on this page are withheld by data policies", when any are.
pub(crate) fn withheld_line(withheld: u64) -> Option<String> {
    match withheld {
        0 => None,
        1 => Some("1 record on this page is withheld by data policies.".to_owned()),
        n => Some(format!(
            "{n} records on this page are withheld by data policies."
        )),
    }
}
