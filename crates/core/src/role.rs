//! Who wrote a message: the one `Role` of memory, retrieval and the chat-completions wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who wrote a message (or a turn of a conversation).
///
/// Serialized lowercase (`"user"`, `"assistant"`, `"system"`), the names stores keep and
/// chat-completions APIs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person talking to the assistant.
    User,
    /// The assistant's answer.
    Assistant,
    /// Instructions or notes that frame the conversation.
    System,
}

impl Role {
    /// The lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseRoleError;

    /// # Errors
    /// [`ParseRoleError`] when `s` is not exactly `user`, `assistant` or `system`.
    fn from_str(s: &str) -> Result<Self, ParseRoleError> {
        match s {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "system" => Ok(Role::System),
            other => Err(ParseRoleError(other.to_owned())),
        }
    }
}

/// A role name that is not one of `user`, `assistant`, `system`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRoleError(String);

impl ParseRoleError {
    /// The text that was not a role.
    pub fn input(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseRoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role {:?} is not one of user, assistant, system", self.0)
    }
}

impl std::error::Error for ParseRoleError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_on_the_wire_and_as_text() {
        for role in [Role::User, Role::Assistant, Role::System] {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_choices() {
        let err = "User".parse::<Role>().unwrap_err();
        assert_eq!(err.input(), "User");
        assert_eq!(
            err.to_string(),
            "role \"User\" is not one of user, assistant, system"
        );
        assert!(serde_json::from_str::<Role>("\"tool\"").is_err());
    }
}
