//! Where bearer tokens come from: `auth.static_token` (used as is), or Entra ID — the
//! refresh token of `partnerwatch login` (delegated App+User access, which the Referrals API
//! requires) or the client secret / federated token (app-only access, where an API allows
//! it), see [`entra`]; or the Azure host's managed identity, see [`managed`].

pub mod entra;
pub mod managed;

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::config::{AuthConfig, Secret};

/// The Partner Center API audience.
pub const PARTNER_CENTER: &str = "https://api.partner.microsoft.com";
/// The Partner Center analytics API audience (license usage).
pub const PARTNER_CENTER_ANALYTICS: &str = "https://api.partnercenter.microsoft.com";
/// The Partner Insights (ABSS) API audience.
pub const PARTNER_INSIGHTS: &str = "https://m365partner.microsoft.com";

/// The API behind an audience, in words.
pub fn api_name(audience: &str) -> &'static str {
    match audience {
        PARTNER_CENTER => "the Partner Center Referrals API",
        PARTNER_CENTER_ANALYTICS => "the Partner Center license usage API",
        PARTNER_INSIGHTS => "the Partner Insights API",
        _ => "this API",
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials configured: set auth.static_token, or auth.tenant_id and auth.client_id (then run `partnerwatch login`)")]
    NotConfigured,
    #[error("not signed in: run `partnerwatch login` (Partner Insights alone may also use app-only access: auth.client_secret)")]
    NotSignedIn,
    #[error("{} accepts only App+User sign-in (a person's delegated access), not the app-only access of {how}: run `partnerwatch login` with {}", api_name(audience), who_signs_in(audience))]
    NeedsUser {
        audience: &'static str,
        how: &'static str,
    },
    #[error("sign-in failed: {error}{}: {description}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Entra {
        /// The OAuth error, e.g. `invalid_grant`.
        error: String,
        /// The AADSTS code, e.g. `AADSTS700082` (refresh token expired), `AADSTS50076` (MFA required).
        code: Option<String>,
        description: String,
    },
    #[error("managed identity: {0} (is partnerwatch running on an Azure host with that identity assigned?)")]
    ManagedIdentity(String),
    #[error("cannot reach the sign-in service: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Storage(String),
}

/// Who should sign in for the APIs of `audience`.
fn who_signs_in(audience: &str) -> &'static str {
    match audience {
        PARTNER_CENTER => "an account in the Referral Admin or Referral User role",
        _ => "an account of the partner's Partner Center that may read analytics",
    }
}

/// `audience` as its constant when its APIs accept only delegated (App+User) tokens. The
/// Referrals API "supports only user access" (api-docs/referrals-list.txt) and license usage
/// "supports authentication with App+User credentials" (license-usage-analytics.txt, read
/// strictly); Partner Insights takes users (`Api.Access`) and applications
/// (`Api.Access.Application`).
pub fn user_only(audience: &str) -> Option<&'static str> {
    [PARTNER_CENTER, PARTNER_CENTER_ANALYTICS]
        .into_iter()
        .find(|a| *a == audience)
}

/// Hands out bearer tokens for an API audience.
#[derive(Debug, Clone)]
pub enum TokenProvider {
    Static(Secret),
    Entra(Arc<entra::Entra>),
    Managed(Arc<managed::Managed>),
}

impl TokenProvider {
    pub fn from_config(auth: &AuthConfig, state_dir: &Path) -> Result<TokenProvider, AuthError> {
        if let Some(token) = &auth.static_token {
            return Ok(TokenProvider::Static(token.clone()));
        }
        if let Some(identity) = &auth.managed_identity {
            let managed = managed::Managed::new(managed::Identity::parse(identity))?;
            return Ok(TokenProvider::Managed(Arc::new(managed)));
        }
        match (&auth.tenant_id, &auth.client_id) {
            (Some(tenant), Some(client)) => {
                let federated = auth
                    .federated_token_file
                    .as_ref()
                    .map(|f| std::path::PathBuf::from(&f.0))
                    .or_else(|| {
                        std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").map(std::path::PathBuf::from)
                    });
                let entra = entra::Entra::new(
                    auth.authority
                        .as_deref()
                        .unwrap_or("https://login.microsoftonline.com"),
                    tenant,
                    client,
                    auth.client_secret.clone(),
                    state_dir,
                )
                .with_federated_token_file(federated);
                Ok(TokenProvider::Entra(Arc::new(entra)))
            }
            _ => Err(AuthError::NotConfigured),
        }
    }

    /// A token for `audience`.
    pub async fn token(&self, audience: &str, now: Timestamp) -> Result<Secret, AuthError> {
        match self {
            TokenProvider::Static(s) => Ok(s.clone()),
            TokenProvider::Entra(e) => e.token(audience, now).await,
            TokenProvider::Managed(m) => {
                if let Some(audience) = user_only(audience) {
                    return Err(AuthError::NeedsUser {
                        audience,
                        how: "a managed identity",
                    });
                }
                m.token(audience).await
            }
        }
    }

    /// The kind of token the APIs of `audience` get from this provider, in words.
    pub fn kind(&self, audience: &str) -> &'static str {
        match self {
            TokenProvider::Static(_) => "auth.static_token (its kind is not known here)",
            TokenProvider::Managed(_) => "app-only (managed identity)",
            TokenProvider::Entra(e) if e.signed_in() => {
                "delegated (App+User, from `partnerwatch login`)"
            }
            TokenProvider::Entra(_) if user_only(audience).is_some() => {
                "none (this API needs `partnerwatch login`)"
            }
            TokenProvider::Entra(e) => e.app_only_kind(),
        }
    }

    /// Why the APIs of `audience` cannot be called with what is configured, before any call
    /// (for `check`): `Some` when only app-only access is available to an App+User-only API.
    pub fn refusal(&self, audience: &str) -> Option<AuthError> {
        let audience = user_only(audience)?;
        match self {
            TokenProvider::Static(_) => None,
            TokenProvider::Managed(_) => Some(AuthError::NeedsUser {
                audience,
                how: "a managed identity",
            }),
            TokenProvider::Entra(e) => (!e.signed_in()).then(|| e.needs_user(audience)),
        }
    }

    /// Forgets a cached token the API refused, so the next call gets a fresh one.
    pub fn invalidate(&self, audience: &str) {
        match self {
            TokenProvider::Static(_) => {}
            TokenProvider::Entra(e) => e.invalidate(audience),
            TokenProvider::Managed(m) => m.invalidate(),
        }
    }
}
