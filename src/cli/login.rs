//! `partnerwatch login`: the device-code sign-in for delegated (App+User) access.

use std::path::Path;
use std::process::ExitCode;

use crate::auth::{TokenProvider, PARTNER_CENTER};

pub async fn login(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    crate::store::prepare_state_dir(&config.state_dir)?;
    let provider = TokenProvider::from_config(&config.auth, &config.state_dir)?;
    let TokenProvider::Entra(entra) = provider else {
        anyhow::bail!("auth.static_token or auth.managed_identity is set, so there is nothing to sign in to: remove it and set auth.tenant_id and auth.client_id to use Entra ID sign-in");
    };
    entra
        .login(
            PARTNER_CENTER,
            |message| println!("{message}"),
            jiff::Timestamp::now,
        )
        .await?;
    println!(
        "Signed in. The refresh token is kept in {} (readable by you only) and renewed at every use; sign in again if partnerwatch stays unused for 90 days.",
        config.state_dir.join(crate::auth::entra::REFRESH_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
