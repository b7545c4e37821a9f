//! Entra ID sign-in against the simulator's token service: device code, rotated refresh
//! tokens kept owner-only, refresh on 401, client credentials, and `system.auth_failed`.

mod common;

use partnerwatch::model::EventKind;
use partnerwatch::sim::Simulator;

/// Rewrites the test configuration to sign in with Entra ID at the simulator.
fn entra_config(
    dir: &std::path::Path,
    sim: &Simulator,
    secret: Option<&str>,
) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    let secret_line = secret
        .map(|s| format!("  client_secret: \"{s}\"\n"))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("auth:\n  static_token: {}\n", sim.token()),
        &format!("auth:\n  tenant_id: contoso-tenant\n  client_id: 11111111-2222-3333-4444-555555555555\n  authority: {}\n{secret_line}", sim.authority()),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn device_code_login_then_polls_with_rotated_owner_only_refresh_tokens() {
    let (_rt, sim) = common::sim_runtime(12, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = entra_config(dir.path(), &sim, None);

    let (ok, _, err) = common::partnerwatch(&config, &["poll"]);
    assert!(
        !ok && err.contains("not signed in: run `partnerwatch login`"),
        "{err}"
    );

    let (ok, out, err) = common::partnerwatch(&config, &["login"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("enter the code SIMCODE1") && out.contains("Signed in."),
        "{out}"
    );
    let file = dir.path().join("state/refresh_token");
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.starts_with("sim-rt-"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.path().join("state"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    assert_eq!(
        sim.state().auth.grants["urn:ietf:params:oauth:grant-type:device_code"],
        2,
        "pending once, then signed in"
    );

    let (ok, out, err) = common::partnerwatch(&config, &["poll"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("12 records"), "{out}");
    let second = std::fs::read_to_string(&file).unwrap();
    assert_ne!(first, second, "the refresh token was rotated");
    assert!(
        !err.contains(&second) && !out.contains(&second),
        "no token in the output"
    );
    let (ok, ..) = common::partnerwatch(&config, &["poll"]);
    assert!(ok, "the rotated token works");
}

#[test]
fn refused_token_is_renewed_once_and_an_expired_sign_in_raises_auth_failed() {
    let (rt, sim) = common::sim_runtime(12, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = entra_config(dir.path(), &sim, None);
    assert!(common::partnerwatch(&config, &["login"]).0);

    rt.block_on(async {
        let clock = common::clock();
        let p = common::pipeline(&config, &clock);
        p.poll(&p.sources[0], false).await.unwrap();

        // The API stops accepting the cached access token: renewed through the refresh token.
        sim.state().auth.expire_access_tokens();
        let refreshes = sim.state().auth.grants["refresh_token"];
        p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(sim.state().stats.unauthorized, 1);
        assert_eq!(sim.state().auth.grants["refresh_token"], refreshes + 1);

        // 90 days idle: the refresh token is gone. The sweep fails and says why, once.
        sim.state().auth.revoke_refresh_tokens();
        sim.state().auth.expire_access_tokens();
        let err = p.poll(&p.sources[0], false).await.unwrap_err().to_string();
        assert!(err.contains("invalid_grant (AADSTS700082)"), "{err}");
        p.poll(&p.sources[0], false).await.unwrap_err();
        let auth_failed: Vec<_> = p
            .store
            .events()
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::SystemAuthFailed)
            .collect();
        assert_eq!(auth_failed.len(), 1);
        assert_eq!(auth_failed[0].data["code"], "AADSTS700082");
        assert_eq!(auth_failed[0].data["source"], "referrals");
    });
}

/// The Referrals API "supports only user access" and license usage "App+User credentials":
/// with only a client secret, partnerwatch never sends them an app-only token and says to
/// sign in; Partner Insights takes the app-only token.
#[test]
fn client_credentials_reach_partner_insights_but_never_the_app_user_only_apis() {
    let (_rt, sim) = common::sim_runtime(12, 5);
    let dir = tempfile::tempdir().unwrap();
    let secret = Some(partnerwatch::sim::auth::CLIENT_SECRET);
    let config = entra_config(dir.path(), &sim, secret);
    let (ok, out, err) = common::partnerwatch(&config, &["poll"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("the Partner Center Referrals API accepts only App+User sign-in")
            && err.contains("auth.client_secret")
            && err.contains("run `partnerwatch login`"),
        "{err}"
    );
    assert_eq!(
        sim.state().auth.grants.get("client_credentials"),
        None,
        "no app-only token was even asked for"
    );
    let (ok, out, err) = common::partnerwatch(&config, &["check"]);
    assert!(
        out.contains("accepts only App+User sign-in")
            || err.contains("accepts only App+User sign-in"),
        "check says so before anything runs: {ok} {out}{err}"
    );

    common::abss_only(&config, &sim, "v1.3", "");
    let (ok, out, err) = common::partnerwatch(&config, &["poll"]);
    assert!(ok, "{out}{err}");
    assert_eq!(sim.state().auth.grants["client_credentials"], 1);
    assert!(!dir.path().join("state/refresh_token").exists());

    let wrong = entra_config(dir.path(), &sim, Some("not-the-secret-123"));
    common::abss_only(&wrong, &sim, "v1.3", "");
    let (ok, _, err) = common::partnerwatch(&wrong, &["poll"]);
    assert!(
        !ok && err.contains("invalid_client (AADSTS7000215)"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret-123"));
}

#[test]
fn workload_identity_exchanges_the_federated_token() {
    let (_rt, sim) = common::sim_runtime(12, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = entra_config(dir.path(), &sim, None);
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(
        &token_file,
        format!("{}\n", partnerwatch::sim::auth::FEDERATED_TOKEN),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("  authority: {}\n", sim.authority()),
        &format!(
            "  authority: {}\n  federated_token_file: {}\n",
            sim.authority(),
            token_file.display()
        ),
    );
    std::fs::write(&config, text).unwrap();
    common::abss_only(&config, &sim, "v1.3", "");

    let (ok, out, err) = common::partnerwatch(&config, &["poll"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        sim.state().auth.grants["client_credentials"],
        1,
        "one exchange, no secret"
    );
    assert!(!dir.path().join("state/refresh_token").exists());

    std::fs::write(&token_file, "a-stale-token").unwrap();
    let (ok, _, err) = common::partnerwatch(&config, &["poll"]);
    assert!(!ok && err.contains("invalid_client"), "{err}");
}

/// The simulator holds tokens to what they were issued for: an app-only token on the
/// Referrals API is refused with 403, a token for another API with 401.
#[test]
fn the_simulated_apis_refuse_app_only_and_foreign_tokens() {
    let (rt, sim) = common::sim_runtime(3, 5);
    let status = |scope: &str, url: String| {
        rt.block_on(async {
            let client = reqwest::Client::new();
            let token: serde_json::Value = client
                .post(format!("{}/contoso/oauth2/v2.0/token", sim.authority()))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "11111111-2222-3333-4444-555555555555"),
                    ("client_secret", partnerwatch::sim::auth::CLIENT_SECRET),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = token["access_token"].as_str().unwrap().to_string();
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    let referrals = format!("{}/engagements/referrals", sim.referrals_base_url());
    let insights = format!("{}/opportunities/copilot", sim.abss_base_url("v1.3"));
    assert_eq!(
        status(
            "https://api.partner.microsoft.com/.default",
            referrals.clone()
        ),
        403
    );
    assert_eq!(
        status("https://m365partner.microsoft.com/.default", referrals),
        401
    );
    assert_eq!(
        status(
            "https://m365partner.microsoft.com/.default",
            insights.clone()
        ),
        200
    );
    assert_eq!(
        status("https://api.partner.microsoft.com/.default", insights),
        401
    );
}

/// `check --online` calls each configured API once and says, per API, whether it answered,
/// with which kind of token, and what to fix when it was refused.
#[test]
fn check_online_says_per_api_whether_it_answered_and_what_to_fix() {
    let (_rt, sim) = common::sim_runtime(3, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let every_api = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap().replace(
            "channels:\n",
            &format!(
                "  abss:\n    base_url: {}\n  license_usage:\n    base_url: {}\nchannels:\n",
                sim.abss_base_url("v1.3"),
                sim.license_base_url()
            ),
        );
        std::fs::write(path, text).unwrap();
    };
    every_api(&config);
    let (ok, out, err) = common::partnerwatch(&config, &["check", "--online"]);
    assert!(ok, "{out}{err}");
    for line in [
        "Referrals",
        "Deal registration eligibility          answered: the partner is eligible",
        "Partner Insights                       answered: signed in as admin@contoso.example",
        "License usage",
    ] {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(&line), "{line:?} in:\n{out}");
    }
    assert_eq!(out.matches("FAILED").count(), 0, "{out}");

    // The Referrals API refuses the account (no referrals role): the remedy names the roles.
    sim.state().add_fault(partnerwatch::sim::Fault {
        page: Some(1),
        action: partnerwatch::sim::FaultAction::Status {
            status: 403,
            retry_after: None,
        },
        times: 1,
    });
    let (ok, out, _) = common::partnerwatch(&config, &["check", "--online"]);
    assert!(!ok);
    assert!(out.contains("Referral Admin or Referral User"), "{out}");

    // A token no API accepts.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(sim.token(), "not-a-valid-token-00")).unwrap();
    let (ok, out, _) = common::partnerwatch(&config, &["check", "--online"]);
    assert!(!ok);
    assert_eq!(
        out.matches("does not accept auth.static_token").count(),
        4,
        "{out}"
    );
    assert!(!out.contains("not-a-valid-token-00"), "{out}");

    // Only a client secret: Partner Insights answers app-only; the App+User-only APIs are
    // not called, and the remedy is to sign in.
    let config = entra_config(
        dir.path(),
        &sim,
        Some(partnerwatch::sim::auth::CLIENT_SECRET),
    );
    every_api(&config);
    let (ok, out, _) = common::partnerwatch(&config, &["check", "--online"]);
    assert!(!ok, "{out}");
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Partner Insights answered: signed in as admin@contoso.example — token: app-only (auth.client_secret)"),
        "{out}"
    );
    let online = &out[out.find("online:").unwrap()..];
    assert_eq!(
        online.matches("accepts only App+User sign-in").count(),
        3,
        "{out}"
    );
}
