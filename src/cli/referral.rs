//! `partnerwatch referral show|accept|decline|win|lose|update ID`: one referral as stored, and
//! the documented moves through Partner Center's transitions, at most once each.
//!
//! Exit status: 0 done (or shown), 1 Partner Center had it changed first (412: what changed
//! is printed), 2 refused before anything was sent (not possible now, no reason, not
//! confirmed), 3 Partner Center refused or failed (401/403 with the remedy), 4 no answer
//! (whether it took effect is checked before anything is sent again).

use std::io::{BufRead, IsTerminal, Write};

use crate::actions::apply::{Outcome, Request};
use crate::actions::{called, capitalised, possible, status_of, Update, Verb};
use crate::pipeline::Pipeline;

use super::Output;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReferralCommand {
    /// The stored referral: status, deadline and time left, deal value, team, eTag, what can
    /// be done to it now, and its history.
    Show {
        id: String,
        /// The stored record and what can be done, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// New → Active/Accepted.
    Accept(Act),
    /// New → Closed/Declined, with a reason.
    Decline(ActWithReason),
    /// Active → Closed/Won.
    Win(Act),
    /// Active → Closed/Lost, with a reason.
    Lose(ActWithReason),
    /// Changes the deal value, close date or notes, or adds a member of your organisation.
    Update(UpdateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct Act {
    /// The referral's id (as in `partnerwatch events` or a message).
    pub id: String,
    /// Do it without asking first.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ActWithReason {
    #[command(flatten)]
    pub act: Act,
    /// Why (Partner Center's statusReason), e.g. "Budget cut".
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub act: Act,
    #[arg(long, value_name = "AMOUNT")]
    pub deal_value: Option<f64>,
    /// The estimated close date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub close_date: Option<jiff::civil::Date>,
    #[arg(long)]
    pub notes: Option<String>,
    /// Adds a member of your organisation to the team: EMAIL, or "First Last <email>".
    #[arg(long, value_name = "MEMBER")]
    pub add_member: Option<String>,
}

impl ReferralCommand {
    fn act(&self) -> Option<(&Act, Verb)> {
        match self {
            ReferralCommand::Show { .. } => None,
            ReferralCommand::Accept(a) => Some((a, Verb::Accept)),
            ReferralCommand::Decline(a) => Some((&a.act, Verb::Decline)),
            ReferralCommand::Win(a) => Some((a, Verb::Win)),
            ReferralCommand::Lose(a) => Some((&a.act, Verb::Lose)),
            ReferralCommand::Update(a) => Some((&a.act, Verb::Update)),
        }
    }

    /// The referral it is about.
    pub fn id(&self) -> &str {
        match self {
            ReferralCommand::Show { id, .. } => id,
            other => &other.act().expect("an action").0.id,
        }
    }

    /// Marks it as confirmed (`--yes`).
    pub fn confirmed(&mut self) {
        match self {
            ReferralCommand::Show { .. } => {}
            ReferralCommand::Accept(a) | ReferralCommand::Win(a) => a.yes = true,
            ReferralCommand::Decline(a) | ReferralCommand::Lose(a) => a.act.yes = true,
            ReferralCommand::Update(a) => a.act.yes = true,
        }
    }

    /// The action it still has to ask about before acting (no `--yes`).
    pub fn asks(&self) -> Option<Verb> {
        self.act().filter(|(a, _)| !a.yes).map(|(_, v)| v)
    }
}

fn member(text: &str) -> serde_json::Value {
    let (name, email) = match text.rsplit_once('<') {
        Some((name, rest)) => (name.trim(), rest.trim_end_matches('>').trim()),
        None => ("", text.trim()),
    };
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    serde_json::json!({ "email": email, "firstName": first, "lastName": last })
}

/// Who is acting from this command line.
fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("{u} (command line)"))
        .unwrap_or_else(|_| "command line".into())
}

/// One line about a referral: customer — value (status).
pub fn headline(r: &serde_json::Value) -> String {
    format!("{} ({})", called(r), status_of(r))
}

/// Runs one `referral` command on the pipeline's store (here, or in the daemon).
pub async fn referral(pipeline: &Pipeline, command: &ReferralCommand) -> anyhow::Result<Output> {
    let desk = pipeline.desk()?;
    let id = command.id();
    let Some(stored) = desk.stored(id)? else {
        return Ok(Output {
            text: format!(
                "no referral {id} is stored: run `partnerwatch poll` first, or check the id\n"
            ),
            code: 2,
            ..Output::default()
        });
    };
    let Some((act, verb)) = command.act() else {
        let ReferralCommand::Show { json, .. } = command else {
            unreachable!("show")
        };
        return show(pipeline, &stored, *json);
    };
    if !act.yes {
        return Ok(Output {
            text: format!(
                "{}: add --yes to {} it without being asked\n",
                headline(&stored),
                verb.as_str()
            ),
            code: 2,
            ..Output::default()
        });
    }
    let (reason, update) = match command {
        ReferralCommand::Decline(a) | ReferralCommand::Lose(a) => {
            (Some(a.reason.clone()), Update::default())
        }
        ReferralCommand::Update(u) => (
            None,
            Update {
                deal_value: u.deal_value,
                close_date: u
                    .close_date
                    .map(|d| format!("{}T00:00:00Z", d.strftime("%Y-%m-%d"))),
                notes: u.notes.clone(),
                add_member: u.add_member.as_deref().map(member),
            },
        ),
        _ => (None, Update::default()),
    };
    let request = Request {
        referral: id.to_string(),
        verb,
        reason,
        update,
        by: who(),
        via: "cli".into(),
    };
    let outcome = pipeline.act(&request).await?;
    let code = match &outcome {
        Outcome::Done { .. } | Outcome::Already { .. } => 0,
        Outcome::Conflict { .. } => 1,
        Outcome::Refused(_) | Outcome::InProgress => 2,
        Outcome::Failed { .. } => 3,
        Outcome::Unknown { .. } => 4,
    };
    // Deliver what the outcome announces now, as a sweep's messages are.
    if let Err(e) = pipeline.deliver().await {
        tracing::warn!(error = %format!("{e:#}"), "the outcome's messages wait in the outbox");
    }
    Ok(Output {
        text: format!("{}: {}\n", headline(&stored), outcome.say(verb)),
        code,
        ..Output::default()
    })
}

fn show(pipeline: &Pipeline, r: &serde_json::Value, json: bool) -> anyhow::Result<Output> {
    let id = r["id"].as_str().unwrap_or_default();
    let now = pipeline.clock.now();
    let verbs: Vec<&str> = possible(r).iter().map(|v| v.as_str()).collect();
    // The check of this version of the referral, if it was made (its event's id is known).
    let eligibility = pipeline
        .store
        .event(&crate::detect::referrals::eligibility_event_id(r))?
        .map(|e| e.data);
    let versions = pipeline
        .store
        .history(crate::sources::referrals::DATASET, id)?
        .len();
    if json {
        let out = serde_json::json!({
            "referral": r,
            "possible": verbs,
            "eligibility": eligibility,
            "earlier_versions": versions,
            "link": pipeline.config.links.referral(id),
        });
        return Ok(Output::text(format!(
            "{}\n",
            serde_json::to_string_pretty(&out)?
        )));
    }
    let tz = &pipeline.config.timezone;
    let mut lines = vec![headline(r)];
    let mut fact = |label: &str, value: String| {
        if !value.is_empty() {
            lines.push(format!("  {label:<12} {value}"));
        }
    };
    fact("Status", status_of(r));
    if let Some(deadline) = r["expirationDateTime"].as_str() {
        let left = deadline
            .parse::<jiff::Timestamp>()
            .map(|d| crate::templates::helpers::left(d.duration_since(now)))
            .unwrap_or_default();
        fact(
            "Respond by",
            format!("{} — {left}", crate::templates::helpers::date(deadline, tz)),
        );
    }
    let kind = [
        r["direction"].as_str(),
        r["type"].as_str(),
        r["qualification"].as_str(),
    ];
    fact(
        "Type",
        kind.iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(" · "),
    );
    let team: Vec<String> = r["team"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{} {} <{}>",
                m["firstName"].as_str().unwrap_or_default(),
                m["lastName"].as_str().unwrap_or_default(),
                m["email"].as_str().unwrap_or_default()
            )
            .trim()
            .to_string()
        })
        .collect();
    fact("Team", team.join(", "));
    fact("eTag", r["eTag"].as_str().unwrap_or_default().to_string());
    if let Some(e) = &eligibility {
        fact(
            "Deal reg.",
            format!(
                "{}{}",
                if e["isEligible"] == true {
                    "eligible"
                } else {
                    "not eligible"
                },
                e["failed"]
                    .as_array()
                    .filter(|f| !f.is_empty())
                    .map(|f| format!(
                        " (failed: {})",
                        f.iter()
                            .filter_map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .unwrap_or_default()
            ),
        );
    }
    fact(
        "History",
        format!("{versions} earlier version(s): partnerwatch history {id}"),
    );
    fact(
        "Can do now",
        if verbs.is_empty() {
            "nothing (closed)".to_string()
        } else {
            verbs.join(", ")
        },
    );
    fact("Link", pipeline.config.links.referral(id));
    Ok(Output::text(format!("{}\n", lines.join("\n"))))
}

/// Asks the person at the terminal to confirm `verb` on the referral `summary` describes.
/// False when they do not, or when there is no terminal to ask at.
pub fn confirm(verb: Verb, summary: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    let first = summary.lines().next().unwrap_or(summary);
    let mut err = std::io::stderr();
    let _ = write!(err, "{} {first}? [y/N] ", capitalised(verb.as_str()));
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}
