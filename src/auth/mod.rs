//! Where bearer tokens come from. This version supports `auth.static_token` (one token used
//! as is for every source); the Entra ID flows (client credentials, device code, refresh
//! tokens) plug in behind [`TokenProvider::token`].

use crate::config::{AuthConfig, Secret};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credentials configured: set auth.static_token (a bearer token) in the configuration"
    )]
    NotConfigured,
    #[error("auth: Entra ID sign-in (tenant_id/client_id/client_secret) is not available in this version yet; set auth.static_token")]
    EntraNotYet,
}

/// Hands out bearer tokens for an API audience.
#[derive(Debug, Clone)]
pub enum TokenProvider {
    Static(Secret),
}

impl TokenProvider {
    pub fn from_config(auth: &AuthConfig) -> Result<TokenProvider, AuthError> {
        if let Some(token) = &auth.static_token {
            return Ok(TokenProvider::Static(token.clone()));
        }
        if auth.client_id.is_some() || auth.tenant_id.is_some() {
            return Err(AuthError::EntraNotYet);
        }
        Err(AuthError::NotConfigured)
    }

    /// A token for `audience` (e.g. `https://api.partner.microsoft.com`).
    pub async fn token(&self, _audience: &str) -> Result<Secret, AuthError> {
        match self {
            TokenProvider::Static(s) => Ok(s.clone()),
        }
    }
}
