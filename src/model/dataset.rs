//! [`Dataset`]: every dataset partnerwatch reads, named once. The name is what the store keys
//! records by, what `Event.source` holds and what `sources.abss.datasets` lists. Where each one
//! lives in an API (paths, keys, paging) is the business of `sources`, not of this list.

use std::fmt;

/// One dataset of one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    /// Partner Center co-sell referrals (`GET /engagements/referrals`).
    Referrals,
    /// Partner Center analytics: license usage per workload.
    LicenseUsage,
    /// ABSS: Copilot opportunities, one per customer tenant.
    Copilot,
    /// ABSS: pipeline, penetration, utilization, earnings.
    CopilotSummary,
    /// ABSS: tenants per adoption health class.
    AdoptionSummary,
    /// ABSS: MCI partner performance rows.
    MciPerformance,
    /// ABSS: eligibility per solution play.
    MciSummary,
    /// ABSS: referrals offered to the partner.
    PartnerReferrals,
}

impl Dataset {
    /// The datasets of the Partner Insights (ABSS) API, in the order they are polled.
    pub const ABSS: [Dataset; 6] = [
        Dataset::Copilot,
        Dataset::CopilotSummary,
        Dataset::AdoptionSummary,
        Dataset::MciPerformance,
        Dataset::MciSummary,
        Dataset::PartnerReferrals,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Dataset::Referrals => "referrals",
            Dataset::LicenseUsage => "license_usage",
            Dataset::Copilot => "copilot",
            Dataset::CopilotSummary => "copilot_summary",
            Dataset::AdoptionSummary => "adoption_summary",
            Dataset::MciPerformance => "mci_performance",
            Dataset::MciSummary => "mci_summary",
            Dataset::PartnerReferrals => "partner_referrals",
        }
    }

    /// An ABSS dataset by the name `sources.abss.datasets` uses.
    pub fn abss(name: &str) -> Option<Dataset> {
        Dataset::ABSS.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
