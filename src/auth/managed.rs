//! Managed identity: app-only tokens from the Azure host itself, with no secret anywhere —
//! `azure_identity`'s `ManagedIdentityCredential`. On a virtual machine or AKS node it asks the
//! instance metadata service (IMDS); on App Service, Container Apps and Functions it asks the
//! endpoint the platform names in `IDENTITY_ENDPOINT` / `IDENTITY_HEADER`.
//!
//! Must never: log or return the token in an error.

use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

use super::AuthError;
use crate::config::Secret;

/// Which identity of the host to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The host's system-assigned identity.
    System,
    /// A user-assigned identity, by its client id.
    User(String),
}

impl Identity {
    /// `system`, or the client id of a user-assigned identity.
    pub fn parse(value: &str) -> Identity {
        match value.trim() {
            v if v.eq_ignore_ascii_case("system") => Identity::System,
            v => Identity::User(v.to_string()),
        }
    }
}

pub struct Managed {
    identity: Identity,
    /// Replaced after the API refused a token, so the next call asks the host again rather
    /// than the credential's own cache.
    credential: Mutex<Arc<ManagedIdentityCredential>>,
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Managed {
    pub fn new(identity: Identity) -> Result<Managed, AuthError> {
        let credential = Self::credential(&identity)?;
        Ok(Managed {
            identity,
            credential: Mutex::new(credential),
        })
    }

    fn credential(identity: &Identity) -> Result<Arc<ManagedIdentityCredential>, AuthError> {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: match identity {
                Identity::System => None,
                Identity::User(id) => Some(UserAssignedId::ClientId(id.clone())),
            },
            ..Default::default()
        };
        ManagedIdentityCredential::new(Some(options))
            .map_err(|e| AuthError::ManagedIdentity(e.to_string()))
    }

    /// A token for `audience` (cached by the credential until shortly before it expires).
    pub async fn token(&self, audience: &str) -> Result<Secret, AuthError> {
        let credential = self.credential.lock().expect("credential").clone();
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let token = credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| AuthError::ManagedIdentity(first_line(&e.to_string())))?;
        Ok(Secret::new(token.token.secret()))
    }

    /// Drops every cached token (after an API answered 401).
    pub fn invalidate(&self) {
        if let Ok(fresh) = Self::credential(&self.identity) {
            *self.credential.lock().expect("credential") = fresh;
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
