//! The status changes an officer asks for — suspend, resume, revoke — as
//! request bodies, shared by the certificate and the card routes.

use serde::Deserialize;
use utoipa::ToSchema;

use crate::authority::Actor;
use crate::domain::{Channel, RevocationReason, Transition};
use crate::http::problem::ApiError;

/// Longest note accepted on a status change.
const MAX_NOTE_CHARS: usize = 1000;

/// How a suspension reached the RA.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum SuspendChannel {
    /// At the registration window.
    #[default]
    Ra,
    /// By fax with an identity document.
    Emergency,
}

/// `POST .../suspend`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    #[serde(default)]
    channel: SuspendChannel,
    /// For the status history; never logged.
    note: Option<String>,
}

/// `POST .../resume`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    /// For the status history; never logged.
    note: Option<String>,
}

/// `POST .../revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn.
    #[schema(example = "keyCompromise")]
    reason: String,
    /// For the status history; never logged.
    note: Option<String>,
}

/// A status change as the authority takes it.
pub struct Change {
    pub transition: Transition,
    pub channel: Channel,
    pub note: Option<String>,
}

impl Change {
    /// The officer asking, as the audit log records them.
    pub fn actor<'a>(&self, officer: &'a str) -> Actor<'a> {
        Actor {
            name: officer,
            channel: self.channel,
        }
    }
}

/// A request body that asks for a status change.
pub trait ChangeBody {
    fn change(self) -> Result<Change, ApiError>;
}

fn checked_note(note: Option<String>) -> Result<Option<String>, ApiError> {
    match note {
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(ApiError::bad_request(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        ))),
        note => Ok(note),
    }
}

impl ChangeBody for SuspendBody {
    fn change(self) -> Result<Change, ApiError> {
        let channel = match self.channel {
            SuspendChannel::Ra => Channel::Ra,
            SuspendChannel::Emergency => Channel::Emergency,
        };
        Ok(Change {
            transition: Transition::Suspend,
            channel,
            note: checked_note(self.note)?,
        })
    }
}

impl ChangeBody for ResumeBody {
    fn change(self) -> Result<Change, ApiError> {
        Ok(Change {
            transition: Transition::Resume,
            channel: Channel::Ra,
            note: checked_note(self.note)?,
        })
    }
}

impl ChangeBody for RevokeBody {
    fn change(self) -> Result<Change, ApiError> {
        let reason: RevocationReason =
            self.reason
                .parse()
                .map_err(|e: crate::domain::reason::RevocationReasonError| {
                    ApiError::bad_request(e.to_string())
                })?;
        Ok(Change {
            transition: Transition::Revoke(reason),
            channel: Channel::Ra,
            note: checked_note(self.note)?,
        })
    }
}
