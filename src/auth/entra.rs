//! A small client of the Entra ID v2.0 endpoints: the device-code sign-in (`partnerwatch
//! login`), refresh tokens (rotated at every use, kept in the state folder readable by the
//! owner only), client credentials for APIs that allow app-only access, and one access token
//! per audience cached until shortly before it expires.
//!
//! Must never: log or return a token or the client secret in an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::AuthError;
use crate::config::Secret;

/// Tokens are renewed this long before they expire.
const EARLY: SignedDuration = SignedDuration::from_mins(5);

/// The file in the state folder that holds the refresh token.
pub const REFRESH_FILE: &str = "refresh_token";

#[derive(Debug)]
pub struct Entra {
    token_url: String,
    device_url: String,
    client_id: String,
    client_secret: Option<Secret>,
    refresh_file: PathBuf,
    /// Workload identity: a federated token to exchange (client assertion).
    federated_token_file: Option<PathBuf>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (Secret, Timestamp)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<i64>,
}

#[derive(Deserialize)]
struct DeviceCode {
    device_code: String,
    #[serde(default)]
    message: Option<String>,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    #[serde(default = "five")]
    interval: u64,
}

fn five() -> u64 {
    5
}

impl Entra {
    pub fn new(
        authority: &str,
        tenant: &str,
        client_id: &str,
        client_secret: Option<Secret>,
        state_dir: &Path,
    ) -> Self {
        let base = format!("{}/{}/oauth2/v2.0", authority.trim_end_matches('/'), tenant);
        Self {
            token_url: format!("{base}/token"),
            device_url: format!("{base}/devicecode"),
            client_id: client_id.to_string(),
            client_secret,
            refresh_file: state_dir.join(REFRESH_FILE),
            federated_token_file: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("the HTTP client builds with rustls"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Uses the federated token in `file` (workload identity) for app-only access.
    pub fn with_federated_token_file(mut self, file: Option<PathBuf>) -> Self {
        self.federated_token_file = file;
        self
    }

    /// Whether a refresh token from `partnerwatch login` is stored.
    pub fn signed_in(&self) -> bool {
        self.refresh_file.exists()
    }

    /// The app-only access configured, in words.
    pub fn app_only_kind(&self) -> &'static str {
        if self.federated_token_file.is_some() {
            "app-only (workload identity)"
        } else if self.client_secret.is_some() {
            "app-only (auth.client_secret)"
        } else {
            "none (run `partnerwatch login`)"
        }
    }

    /// Why an App+User-only API cannot be called without a sign-in: nothing configured, or
    /// only app-only access.
    pub fn needs_user(&self, audience: &'static str) -> AuthError {
        let how = if self.federated_token_file.is_some() {
            "workload identity"
        } else if self.client_secret.is_some() {
            "auth.client_secret"
        } else {
            return AuthError::NotSignedIn;
        };
        AuthError::NeedsUser { audience, how }
    }

    /// Forgets the cached token for `audience` (after the API answered 401 with it).
    pub fn invalidate(&self, audience: &str) {
        self.cache.lock().expect("token cache").remove(audience);
    }

    /// An access token for `audience`: cached, else from the stored refresh token (delegated
    /// access), else from the client secret (app-only access).
    pub async fn token(&self, audience: &str, now: Timestamp) -> Result<Secret, AuthError> {
        if let Some((token, expires)) = self.cache.lock().expect("token cache").get(audience) {
            if now + EARLY < *expires {
                return Ok(token.clone());
            }
        }
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let refresh = self.read_refresh()?;
        // An App+User-only API is never sent an app-only token: it would answer 403, and the
        // person would learn less than this says.
        if let (None, Some(audience)) = (&refresh, super::user_only(audience)) {
            return Err(self.needs_user(audience));
        }
        let answer = if let Some(refresh) = refresh {
            let scope = format!("{scope} offline_access");
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("refresh_token", refresh.expose()),
                ("scope", scope.as_str()),
            ];
            self.call(&form, "refresh").await?
        } else if let Some(file) = &self.federated_token_file {
            // Read at every exchange: the platform rotates the file.
            let assertion = std::fs::read_to_string(file).map_err(|e| {
                AuthError::Storage(format!(
                    "cannot read the federated token {}: {e}",
                    file.display()
                ))
            })?;
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.trim()),
                ("scope", scope.as_str()),
            ];
            self.call(&form, "workload identity").await?
        } else if let Some(secret) = &self.client_secret {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret.expose()),
                ("scope", scope.as_str()),
            ];
            self.call(&form, "client credentials").await?
        } else {
            return Err(AuthError::NotSignedIn);
        };
        self.accept(audience, answer, now)
    }

    /// Keeps what the token endpoint answered: the rotated refresh token, the access token.
    fn accept(
        &self,
        audience: &str,
        answer: TokenAnswer,
        now: Timestamp,
    ) -> Result<Secret, AuthError> {
        if let Some(rt) = &answer.refresh_token {
            self.write_refresh(rt)?;
        }
        let token = Secret::new(answer.access_token);
        let expires = now + SignedDuration::from_secs(answer.expires_in.unwrap_or(3600));
        self.cache
            .lock()
            .expect("token cache")
            .insert(audience.to_string(), (token.clone(), expires));
        Ok(token)
    }

    async fn call(&self, form: &[(&str, &str)], what: &str) -> Result<TokenAnswer, AuthError> {
        let response = self
            .http
            .post(&self.token_url)
            .form(form)
            .send()
            .await
            .map_err(|e| AuthError::Unreachable(format!("{what}: {}", e.without_url())))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| {
                AuthError::Unreachable(format!(
                    "{what}: the token endpoint answered something else than a token ({e})"
                ))
            });
        }
        Err(entra_error(&body, status.as_u16()))
    }

    /// The device-code sign-in: shows the user where to go and which code to enter, waits
    /// until they did, keeps the refresh token and returns the access token for `audience`.
    pub async fn login(
        &self,
        audience: &str,
        show: impl Fn(&str),
        now: impl Fn() -> Timestamp,
    ) -> Result<Secret, AuthError> {
        let scope = format!("{}/.default offline_access", audience.trim_end_matches('/'));
        let response = self
            .http
            .post(&self.device_url)
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .map_err(|e| AuthError::Unreachable(format!("device code: {}", e.without_url())))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(entra_error(&body, status.as_u16()));
        }
        let code: DeviceCode = serde_json::from_str(&body)
            .map_err(|e| AuthError::Unreachable(format!("device code: unexpected answer ({e})")))?;
        show(&code.message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}.",
                code.verification_uri, code.user_code
            )
        }));
        let mut interval = code.interval.max(1);
        let deadline = now() + SignedDuration::from_secs(code.expires_in as i64);
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", self.client_id.as_str()),
                ("device_code", code.device_code.as_str()),
            ];
            match self.call(&form, "device code").await {
                Ok(answer) => return self.accept(audience, answer, now()),
                Err(AuthError::Entra { ref error, .. }) if error == "authorization_pending" => {}
                Err(AuthError::Entra { ref error, .. }) if error == "slow_down" => interval += 5,
                Err(e) => return Err(e),
            }
            if now() > deadline {
                return Err(AuthError::Entra {
                    error: "expired_token".into(),
                    code: None,
                    description: "the code expired before the sign-in was completed; run `partnerwatch login` again".into(),
                });
            }
        }
    }

    fn read_refresh(&self) -> Result<Option<Secret>, AuthError> {
        match std::fs::read_to_string(&self.refresh_file) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(Secret::new(s.trim()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuthError::Storage(format!(
                "cannot read {}: {e}",
                self.refresh_file.display()
            ))),
        }
    }

    /// Writes the refresh token atomically, readable by the owner only.
    fn write_refresh(&self, token: &str) -> Result<(), AuthError> {
        let fail = |e: std::io::Error| {
            AuthError::Storage(format!(
                "cannot store the refresh token in {}: {e}",
                self.refresh_file.display()
            ))
        };
        if let Some(dir) = self.refresh_file.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self.refresh_file.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        {
            use std::io::Write;
            let mut f = options.open(&tmp).map_err(fail)?;
            f.write_all(token.as_bytes()).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.refresh_file).map_err(fail)
    }
}

/// Entra's error answer as an [`AuthError`], with the AADSTS code.
fn entra_error(body: &str, status: u16) -> AuthError {
    let e: ErrorAnswer = serde_json::from_str(body).unwrap_or_default();
    if e.error.is_empty() {
        return AuthError::Unreachable(format!("the token endpoint answered {status}"));
    }
    let description = e
        .error_description
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let code = e
        .error_codes
        .first()
        .map(|c| format!("AADSTS{c}"))
        .or_else(|| {
            description
                .split(':')
                .next()
                .filter(|p| p.starts_with("AADSTS"))
                .map(str::to_string)
        });
    AuthError::Entra {
        error: e.error,
        code,
        description,
    }
}
