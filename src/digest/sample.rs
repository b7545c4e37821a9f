//! A digest with every section filled, and names full of quotes, markup and emoji: what
//! `check` renders every digest template against, and what the template tests use.

use super::*;

impl Composed {
    /// A digest with every section filled (names full of quotes, markup and emoji), for
    /// `check` and for tests of the templates.
    pub fn sample(digest: &DigestConfig, tz: &jiff::tz::TimeZone) -> Composed {
        use content::*;
        let end: Timestamp = "2026-11-23T07:00:00Z".parse().expect("valid time");
        let hostile = "Contoso \"Ltd\" <b>&</b> 🚀 *bold*";
        let line = |n: u32, note: &str| ReferralLine {
            id: format!("ref-{n}"),
            name: format!("{hostile} – Copilot rollout {n}"),
            customer: hostile.into(),
            value: format!("{},000 USD", 10 * n),
            amount: f64::from(10_000 * n),
            currency: "USD".into(),
            note: note.into(),
        };
        let money = |amount: f64| Money {
            currency: "USD".into(),
            amount,
            display: crate::templates::helpers::money(&json!(amount), "USD"),
        };
        let health = |status: &str, now: usize, week_ago: usize| HealthCount {
            status: status.into(),
            now,
            week_ago,
            delta: match now as i64 - week_ago as i64 {
                0 => String::new(),
                d if d > 0 => format!("+{d}"),
                d => d.to_string(),
            },
        };
        let distribution = vec![
            health("Healthy", 4, 5),
            health("Starting", 3, 2),
            health("Failure to Launch/Start", 1, 1),
        ];
        let content = Content {
            referrals: Some(Referrals {
                new_count: 3,
                new_value: vec![money(60_000.0)],
                top_new: vec![line(3, ""), line(2, ""), line(1, "")],
                expiring: vec![line(4, "expires in 2 days")],
                accepted: vec![line(5, "")],
                won: vec![line(6, "")],
                won_value: vec![money(60_000.0)],
                lost: vec![line(7, "Budget moved to next year <script>")],
                declined: vec![line(8, "Not our region")],
                waiting: vec![line(4, "waiting 12 days")],
                eligible: vec![line(9, "")],
                expiring_count: 1,
                accepted_count: 1,
                won_count: 1,
                lost_count: 1,
                declined_count: 1,
                expiring_more: 0,
                accepted_more: 3,
                won_more: 0,
                lost_more: 0,
                declined_more: 0,
            }),
            copilot: Some(Copilot {
                tenants: 8,
                has_week_ago: true,
                distribution: distribution.clone(),
                worse: vec![Move {
                    tenant: hostile.into(),
                    from: "Healthy".into(),
                    to: "Starting".into(),
                }],
                better: vec![Move {
                    tenant: "Fabrikam".into(),
                    from: "Starting".into(),
                    to: "Healthy".into(),
                }],
                whitespace: vec![Whitespace {
                    tenant: hostile.into(),
                    whitespace: 120.0,
                    seats: "120".into(),
                }],
            }),
            mci: Some(Mci {
                plays: vec![Play {
                    play: "Copilot deployment".into(),
                    key: "copilotDeploy".into(),
                    eligibility: "Eligible".into(),
                    passing: 3,
                    failing: 1,
                    total: 4,
                    qualified: 3,
                }],
                milestones: vec![Milestone {
                    tenant: hostile.into(),
                    engagement: "Copilot Deployment".into(),
                    from: "POE".into(),
                    to: "Completed".into(),
                }],
            }),
            licenses: Some(Licenses {
                drops: vec![Drop {
                    customer: hostile.into(),
                    product: "Microsoft 365 E5".into(),
                    workload: "Exchange".into(),
                    from: 120,
                    to: 95,
                    delta: -25,
                }],
            }),
            health: Some(Health {
                sweeps_failed: 2,
                failed_by_source: vec!["referrals: 2".into()],
                dead_letters: 1,
                auth_failures: vec!["referrals: AADSTS700082".into()],
                sign_in: None,
            }),
            pipeline: (0..PIPELINE_WEEKS)
                .map(|i| Week {
                    label: format!("W{i}"),
                    new: i * 2,
                })
                .collect(),
        };
        let png = |r: Result<chart::Png, String>| r.expect("the sample charts draw");
        Composed {
            name: digest.name.clone(),
            template: digest.template.clone(),
            title: "Partner digest: week of 16 Nov 2026".into(),
            period: Period::week_to(end),
            charts: vec![
                Chart {
                    key: "pipeline",
                    content_id: "pipeline.sample@partnerwatch".into(),
                    alt: "New referrals per week".into(),
                    png: png(chart::pipeline(&content.pipeline)),
                },
                Chart {
                    key: "adoption",
                    content_id: "adoption.sample@partnerwatch".into(),
                    alt: "Copilot adoption health".into(),
                    png: png(chart::adoption(&distribution, true)),
                },
            ],
            content,
            generated: end
                .to_zoned(tz.clone())
                .strftime("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            period_text: "Mon 16 Nov 2026 – Mon 23 Nov 2026".into(),
        }
    }
}
