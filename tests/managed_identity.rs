//! Managed identity through `azure_identity`, against the simulator's App Service-style
//! identity endpoint (`IDENTITY_ENDPOINT` / `IDENTITY_HEADER`). Its own test binary: the host's
//! identity comes from the process environment, which the test sets once, before anything reads it.

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use partnerwatch::sim::auth::{IDENTITY_HEADER, USER_ASSIGNED_CLIENT_ID};

fn with_identity(path: &std::path::Path, token: &str, identity: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let old = format!("auth:\n  static_token: {token}\n");
    let text = if text.contains(&old) {
        text.replace(
            &old,
            &format!("auth:\n  managed_identity: \"{identity}\"\n"),
        )
    } else {
        let start = text.find("  managed_identity: ").unwrap();
        let end = start + text[start..].find('\n').unwrap();
        let mut t = text.clone();
        t.replace_range(start..end, &format!("  managed_identity: \"{identity}\""));
        t
    };
    std::fs::write(path, text).unwrap();
}

#[test]
fn managed_identity_signs_in_with_the_hosts_identity() {
    let (rt, sim) = common::sim_runtime(12, 5);
    // The only test in this binary: nothing else reads the environment concurrently.
    std::env::set_var("IDENTITY_ENDPOINT", sim.identity_endpoint());
    std::env::set_var("IDENTITY_HEADER", IDENTITY_HEADER);
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &sim, "");
    with_identity(&path, sim.token(), "system");
    // A managed identity is app-only: the Referrals API is never asked with it.
    let (ok, _, err) = common::partnerwatch(&path, &["poll"]);
    assert!(
        !ok && err.contains("accepts only App+User sign-in") && err.contains("a managed identity"),
        "{err}"
    );
    assert_eq!(sim.state().auth.grants.get("managed_identity"), None);
    common::abss_only(&path, &sim, "v1.3", "");
    let grants = || {
        sim.state()
            .auth
            .grants
            .get("managed_identity")
            .copied()
            .unwrap_or(0)
    };

    rt.block_on(async {
        let clock = common::clock();
        let p = common::pipeline(&path, &clock);
        p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(grants(), 1);
        p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(grants(), 1, "the token is cached between sweeps");

        // The API stops accepting the token: asked for again from the host, not the cache.
        sim.state().auth.expire_access_tokens();
        p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(sim.state().stats.unauthorized, 1);
        assert_eq!(grants(), 2);
    });
    assert!(!dir.path().join("state/refresh_token").exists());

    let poll = |header: &str| {
        let out = Command::cargo_bin("partnerwatch")
            .unwrap()
            .env_remove("RUST_LOG")
            .env("IDENTITY_HEADER", header)
            .arg("--config")
            .arg(&path)
            .arg("poll")
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // A user-assigned identity by client id; one the host does not have is refused clearly.
    with_identity(&path, sim.token(), USER_ASSIGNED_CLIENT_ID);
    let (ok, out) = poll(IDENTITY_HEADER);
    assert!(ok, "{out}");
    with_identity(&path, sim.token(), "00000000-0000-0000-0000-000000000000");
    let (ok, out) = poll(IDENTITY_HEADER);
    assert!(!ok && out.contains("managed identity:"), "{out}");

    // The wrong host secret: refused, and the secret is not in the error.
    with_identity(&path, sim.token(), "system");
    let (ok, out) = poll("not-the-host-secret-42");
    assert!(!ok && out.contains("managed identity:"), "{out}");
    assert!(!out.contains("not-the-host-secret-42"), "{out}");
}
