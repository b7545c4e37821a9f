//! `partnerwatch check`: everything `run` would load, loaded and exercised, nothing started.

use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;

use crate::auth::TokenProvider;
use crate::http::Http;
use crate::model::EventKind;
use crate::pipeline::Assets;
use crate::sources::referrals::ReferralsSource;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Then sign in and call each configured API once (Referrals with $top=1, the partner's
    /// deal-registration eligibility, Partner Insights /currentUser, license usage with
    /// top=1): whether it answered, with which kind of token, and on 401/403 what to fix.
    #[arg(long)]
    pub online: bool,
}

pub async fn check(config_path: &Path, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let http = Http::new(config.http.clone());
    let tokens = TokenProvider::from_config(&config.auth, &config.state_dir).ok();
    crate::notify::build_all(&config, http.client(), tokens.as_ref())?;
    if let Some(referrals) = &config.referrals {
        let tokens = TokenProvider::from_config(&config.auth, &config.state_dir)
            .map_err(|e| config.error_at("auth", format!("auth: {e}")))?;
        ReferralsSource::new(referrals, http.clone(), tokens)
            .map_err(|e| config.error_at("sources.referrals", e))?;
    }
    let mut rendered = 0;
    let mut errors = Vec::new();
    // A template that fails fails for every channel that renders it: one error per place,
    // with the rules and channels it stops.
    type Uses = std::collections::BTreeMap<String, Vec<String>>;
    let mut failed: std::collections::BTreeMap<String, Uses> = Default::default();
    let mut unevaluable: std::collections::BTreeMap<(String, String), Vec<String>> =
        Default::default();
    for rule in &assets.rules.rules {
        let mut kinds: Vec<EventKind> = rule.kinds.iter().copied().collect();
        kinds.sort();
        for kind in kinds {
            let Some(event) = crate::samples::sample_event(kind) else {
                continue;
            };
            // A `when` that cannot be evaluated never matches: on a sample event of a kind
            // the rule is on, that is a mistake (a type error, a field no such event has).
            if let (Some(when), Some(at)) = (&rule.when, &rule.when_at) {
                if let Err(e) = when.eval(&event) {
                    let place = format!(
                        "{}:{}:{}: rule {:?}: `when` cannot be evaluated",
                        at.file.display(),
                        at.line,
                        at.column,
                        rule.name
                    );
                    unevaluable
                        .entry((place, e))
                        .or_default()
                        .push(kind.to_string());
                }
            }
            for channel in &rule.channels {
                let format = config.channels[channel].format();
                let template = rule.template_for(kind);
                match assets.templates.render(&template, format, &event) {
                    Ok(_) => rendered += 1,
                    Err(e) => failed
                        .entry(e)
                        .or_default()
                        .entry(format!("rule {:?} ({kind}", rule.name))
                        .or_default()
                        .push(channel.clone()),
                }
            }
        }
    }
    for ((place, error), kinds) in unevaluable {
        errors.push(format!(
            "{place} on a sample {} event, so it would never match: {error}",
            kinds.join(" or ")
        ));
    }
    for (error, uses) in failed {
        let uses: Vec<String> = uses
            .into_iter()
            .map(|(rule, channels)| format!("{rule} → {})", channels.join(", ")))
            .collect();
        errors.push(format!("{error}\n  used by {}", uses.join("; ")));
    }
    for digest in &config.digests {
        let sample = crate::digest::Composed::sample(digest, &config.timezone);
        for channel in &digest.channels {
            let format = config.channels[channel].format();
            match sample.message(&assets.templates, format) {
                Ok(_) => rendered += 1,
                Err(e) => errors.push(format!(
                    "{}: {e} (for channel {channel})",
                    config.file.display()
                )),
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let sources: Vec<String> = config
        .source_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let channels: Vec<String> = config
        .channels
        .iter()
        .map(|(n, c)| format!("{n} ({})", c.type_name()))
        .collect();
    println!("{}: OK", config.file.display());
    println!(
        "  sources:   {}",
        if sources.is_empty() {
            "none".into()
        } else {
            sources.join(", ")
        }
    );
    println!(
        "  channels:  {}",
        if channels.is_empty() {
            "none".into()
        } else {
            channels.join(", ")
        }
    );
    println!(
        "  rules:     {} from {}",
        assets.rules.rules.len(),
        config.rules_dir.display()
    );
    println!(
        "  templates: {} from {}, {rendered} rendering(s) against sample events",
        assets.templates.names().count(),
        config.templates_dir.display()
    );
    for digest in &config.digests {
        let next = digest
            .slots
            .next(Timestamp::now())
            .map(|n| (digest.slots.describe(), n));
        println!(
            "  digest:    {} → {}{}",
            digest.name,
            digest.channels.join(", "),
            next.map(|(d, n)| format!(
                " · {d} ({}), next {}",
                config.timezone.iana_name().unwrap_or("UTC"),
                n.to_zoned(config.timezone.clone())
                    .strftime("%a %-d %b %Y %H:%M %Z")
            ))
            .unwrap_or_default()
        );
    }
    println!("  state:     {}", config.state_dir.display());
    // The App+User-only APIs with nothing but app-only access: said before anything runs.
    let needs_user = [
        (
            config.referrals.is_some(),
            "sources.referrals",
            crate::auth::PARTNER_CENTER,
        ),
        (
            config.license_usage.is_some(),
            "sources.license_usage",
            crate::auth::PARTNER_CENTER_ANALYTICS,
        ),
    ];
    let mut code = ExitCode::SUCCESS;
    for (_, key, audience) in needs_user.iter().filter(|(on, ..)| *on) {
        match tokens
            .as_ref()
            .and_then(|t| t.refusal(audience).map(|e| (t, e)))
        {
            // A managed identity can never sign in as a person: this configuration cannot work.
            Some((TokenProvider::Managed(_), e)) => {
                eprintln!("error: {}", config.error_at(key, e.to_string()));
                code = ExitCode::FAILURE;
            }
            Some((_, e)) => println!("  sign-in:   {key}: {e}"),
            None => {}
        }
    }
    if args.online && code == ExitCode::SUCCESS {
        code = online(&config, &http).await;
    }
    Ok(code)
}

/// Calls each configured API once and says how it went; exits 1 if any call failed.
async fn online(config: &crate::config::Config, http: &Http) -> ExitCode {
    use crate::sources::probe;
    let tokens = TokenProvider::from_config(&config.auth, &config.state_dir);
    let sources = match crate::pipeline::build_sources(config, http, &tokens) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("online:");
    let mut code = ExitCode::SUCCESS;
    for (p, tokens, http) in probe::probes(&sources) {
        let probed = probe::run(&p, &tokens, &http, Timestamp::now()).await;
        match probed.outcome {
            Ok(what) => println!("  {:<30} {what} — token: {}", probed.api, probed.token),
            Err(why) => {
                println!(
                    "  {:<30} FAILED — token: {}\n  {:<30} {}",
                    probed.api,
                    probed.token,
                    "",
                    crate::config::secret::redact(&why)
                );
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
