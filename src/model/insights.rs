//! Typed views of the Partner Insights (ABSS) and license usage records, from
//! api-docs/abss-partner-insights-api-v1.3.txt and license-usage-analytics.txt: every documented
//! field, `Option` where the API may leave it out or null, enums that keep unknown values,
//! and the casing variants the pages use (`tenantID`/`tenantId`, `licenseActive`/`licensesActive`).
//! Records are stored and diffed as the API sent them; these views are how code reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::api_enum;

api_enum!(
    /// The eight adoption health classes of `adoptionStatus`.
    AdoptionStatus {
        Healthy,
        HealthyButLastMonthDrop,
        HealthyButNegativeSlope,
        Starting,
        FailureToAdoptButLastMonthGain,
        BigGainAndBigDrop,
        FailureToThriveAdopt,
        FailureToLaunchStart,
    }
);

impl AdoptionStatus {
    /// Reads the API's wording ("Failure to Thrive/Adopt", "Big Gain & Big Drop", …).
    pub fn from_api(s: &str) -> AdoptionStatus {
        let squashed: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .replace("and", "And");
        let wanted = squashed.to_ascii_lowercase();
        Self::KNOWN
            .iter()
            .find(|k| {
                k.as_str().to_ascii_lowercase() == wanted
                    || k.as_str().to_ascii_lowercase().replace("and", "")
                        == wanted.replace("and", "")
            })
            .cloned()
            .unwrap_or_else(|| AdoptionStatus::Other(s.to_string()))
    }
}

api_enum!(
    /// `claimStatus` of a tenant workload.
    ClaimStatus { Claimed, ClaimedByOthers, NotClaimed, NotAvailable, Ineligible }
);

api_enum!(
    /// `copilotTargetingScenario`.
    TargetingScenario { Acquire, Monetize, Grow }
);

/// Monthly active users per workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadMau {
    pub teams: Option<i64>,
    pub outlook: Option<i64>,
    pub word: Option<i64>,
    pub excel: Option<i64>,
    pub powerpoint: Option<i64>,
    pub engage: Option<i64>,
    pub onenote: Option<i64>,
    pub sales: Option<i64>,
}

/// Licensed and unlicensed use of one kind of agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentUse {
    pub total: Option<f64>,
    pub licensed: Option<f64>,
    pub unlicensed: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extensibility {
    pub agents_all_up: Option<AgentUse>,
    pub agents_copilot_chat: Option<AgentUse>,
    pub agents_connectors: Option<AgentUse>,
    pub agents_plugin: Option<AgentUse>,
    pub agents_custom: Option<AgentUse>,
}

/// One Copilot opportunity (`GET /opportunities/copilot`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopilotOpportunity {
    pub tpid: Option<i64>,
    pub customer_name: Option<String>,
    pub customer_renewal_date: Option<String>,
    #[serde(alias = "tenantID", alias = "TenantId")]
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub tenant_country_region: Option<String>,
    pub tenant_host_name: Option<String>,
    pub tenant_subsegment: Option<String>,
    pub tenant_parent_segment: Option<String>,
    pub licensed_mau: Option<i64>,
    pub pau: Option<i64>,
    pub utilization_percent: Option<f64>,
    pub free_mau: Option<i64>,
    pub all_mau: Option<i64>,
    pub free_to_paid_whitespace: Option<f64>,
    pub adoption_ready_opportunity: Option<String>,
    pub expansion_ready_opportunity: Option<String>,
    pub eligible_mci_engagements: Option<i64>,
    pub claim_status: Option<ClaimStatus>,
    pub potential_earnings: Option<f64>,
    pub starting_hwm: Option<i64>,
    pub prior_hwm: Option<i64>,
    pub opportunity_units: Option<i64>,
    pub rate_per_unit: Option<i64>,
    pub max_comp_units: Option<i64>,
    pub adoption_status: Option<String>,
    pub mci_potential_earnings: Option<f64>,
    pub cpor_potential_earnings: Option<f64>,
    pub retention_reasons: Option<String>,
    pub growth_reasons: Option<String>,
    pub cpor_claim_id: Option<i64>,
    pub advanced_deployment_guide_name: Option<String>,
    pub advanced_deployment_guide_link: Option<String>,
    pub workload_mau: Option<WorkloadMau>,
    pub claim_workload_link: Option<String>,
    pub claimed_by_others: Option<bool>,
    pub resource_name: Option<String>,
    pub resource_link: Option<String>,
    pub extensibility: Option<Extensibility>,
    pub copilot_targeting_scenario: Option<TargetingScenario>,
    pub copilot_eligible_all_up_seats: Option<i64>,
    pub m365_copilot_all_up_penetration: Option<f64>,
    pub chat_penetration: Option<f64>,
    pub m365_copilot_all_up_whitespace: Option<f64>,
    pub chat_whitespace: Option<f64>,
    pub is_cpor: Option<bool>,
    pub is_cpsp: Option<bool>,
}

impl CopilotOpportunity {
    pub fn health(&self) -> Option<AdoptionStatus> {
        self.adoption_status
            .as_deref()
            .map(AdoptionStatus::from_api)
    }
}

/// `GET /opportunities/copilot/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopilotSummary {
    pub copilot_pipeline_count: Option<i64>,
    pub penetration_percent: Option<f64>,
    pub utilization_percent: Option<f64>,
    pub expansion_ready_count: Option<i64>,
    pub adoption_ready_count: Option<i64>,
    pub at_risk_count: Option<i64>,
    pub blocked_count: Option<i64>,
    pub incentive_eligible_count: Option<i64>,
    pub potential_earnings: Option<f64>,
    pub acquire_count: Option<i64>,
    pub monetize_count: Option<i64>,
    pub grow_count: Option<i64>,
    #[serde(rename = "M365Penetration", alias = "m365Penetration")]
    pub m365_penetration: Option<f64>,
}

/// `GET /opportunities/copilot/adoptionSummary`: tenants per health class, by the API's names.
pub type AdoptionSummary = BTreeMap<String, Option<i64>>;

/// One MCI partner performance row (`GET /mci/partnerPerformance`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MciPerformanceRow {
    pub stage: Option<String>,
    pub tpid_name: Option<String>,
    pub tpid: Option<i64>,
    pub tenant_name: Option<String>,
    #[serde(rename = "tenantID", alias = "tenantId")]
    pub tenant_id: Option<String>,
    pub partner_area: Option<String>,
    pub solution_play: Option<String>,
    #[serde(rename = "claimID", alias = "claimId")]
    pub claim_id: Option<i64>,
    pub engagement_name: Option<String>,
    pub date_initiated: Option<String>,
    pub poe_completion_date: Option<String>,
    pub month_count: Option<f64>,
    pub months_since_completion: Option<f64>,
    pub milestone: Option<String>,
    pub claim_target: Option<i64>,
    pub claim_win_flag: Option<String>,
    pub claim_attainment: Option<f64>,
    pub claim_revised_attainment: Option<f64>,
    pub revenue_attainment: Option<f64>,
    pub quarterly_revenue_target: Option<f64>,
    pub seats_attainment: Option<f64>,
    pub quarterly_seats_target: Option<f64>,
    pub total_attainment: Option<f64>,
    pub consent_flag: Option<String>,
    pub repeat_customer_flag: Option<String>,
    /// The per-product attainment and target figures (Copilot, Copilot Chat, Copilot Studio,
    /// Power Platform), kept by their API names.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One solution play of `GET /mci/partnerPerformance/summary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MciSummaryPart {
    pub eligibility: Option<String>,
    pub claims_percentage: Option<String>,
    pub passing_count: Option<i64>,
    pub failing_count: Option<i64>,
    pub total_engagements: Option<i64>,
    pub qualified_engagements: Option<i64>,
}

/// `GET /mci/partnerPerformance/summary`: per solution play (`copilotDeploy`, …).
pub type MciSummary = BTreeMap<String, MciSummaryPart>;

/// An `{id, name}` lookup value as the ABSS API nests them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdName {
    pub id: Option<serde_json::Value>,
    pub name: Option<String>,
}

/// One partner referral (`GET /partnerReferrals`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerReferral {
    pub id: Option<i64>,
    pub partner_referral_id: Option<String>,
    pub created: Option<String>,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub tenant_domain: Option<String>,
    pub referral_source: Option<IdName>,
    pub workloads: Option<Vec<IdName>>,
    pub claimed: Option<bool>,
    pub partner_referral_number: Option<String>,
    pub acceptance: Option<IdName>,
    pub decline_reason: Option<IdName>,
    pub referral_status: Option<IdName>,
    pub value_added_services_sold: Option<bool>,
    pub services_estimated_value: Option<IdName>,
    pub requestor_contact: Option<IdName>,
    pub primary_contact: Option<IdName>,
    pub secondary_contact: Option<IdName>,
    pub referral_state: Option<IdName>,
    pub referral_stage: Option<String>,
    pub outreach_status: Option<IdName>,
    pub engagement_status: Option<IdName>,
}

/// One license usage row (`GET /v1/analytics/commercial/usage/license`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseUsageRow {
    pub workload_code: Option<String>,
    pub workload_name: Option<String>,
    pub service_code: Option<String>,
    pub service_name: Option<String>,
    pub channel: Option<String>,
    #[serde(alias = "CustomerTenantId", alias = "customerTenantID")]
    pub customer_tenant_id: Option<String>,
    pub customer_name: Option<String>,
    pub product_id: Option<String>,
    pub product_name: Option<String>,
    /// The docs' table says `licensesActive`, their example `licenseActive`.
    #[serde(alias = "licenseActive")]
    pub licenses_active: Option<i64>,
    pub licenses_qualified: Option<i64>,
    pub processed_date_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn health_classes_read_from_the_api_wording() {
        assert_eq!(
            AdoptionStatus::from_api("Failure to Thrive/Adopt"),
            AdoptionStatus::FailureToThriveAdopt
        );
        assert_eq!(
            AdoptionStatus::from_api("Big Gain & Big Drop"),
            AdoptionStatus::BigGainAndBigDrop
        );
        assert_eq!(
            AdoptionStatus::from_api("Healthy but Last Month Drop"),
            AdoptionStatus::HealthyButLastMonthDrop
        );
        assert_eq!(
            AdoptionStatus::from_api("Brand new class"),
            AdoptionStatus::Other("Brand new class".into())
        );
    }

    #[test]
    fn simulated_records_read_into_the_typed_views() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let tenant = crate::sim::abss::new_tenant(&mut rng, 1);
        let t: CopilotOpportunity = serde_json::from_value(tenant.clone()).unwrap();
        assert_eq!(t.tenant_id.as_deref(), tenant["tenantId"].as_str());
        assert!(t
            .health()
            .is_some_and(|h| !matches!(h, AdoptionStatus::Other(_))));
        assert!(t.workload_mau.is_some() && t.extensibility.is_some());
        let row: MciPerformanceRow =
            serde_json::from_value(crate::sim::abss::new_mci_row(&mut rng, 1, &tenant)).unwrap();
        assert_eq!(row.claim_id, Some(500_001));
        let r: PartnerReferral =
            serde_json::from_value(crate::sim::abss::new_partner_referral(&mut rng, 1, &tenant))
                .unwrap();
        assert_eq!(
            r.referral_status.and_then(|s| s.name).as_deref(),
            Some("Open")
        );
        let summary: MciSummary =
            serde_json::from_value(crate::sim::abss::mci_summary(&[])).unwrap();
        assert!(summary.contains_key("copilotDeploy"));
    }

    #[test]
    fn the_docs_license_example_reads_with_its_casing() {
        let row: LicenseUsageRow = serde_json::from_str(
            r#"{"processedDateTime":"2018-10-14T00:00:00","workloadCode":"SPO","customerTenantId":"0112A436","licenseActive":0,"licensesQualified":1}"#,
        )
        .unwrap();
        assert_eq!(row.licenses_active, Some(0));
        assert_eq!(row.workload_code.as_deref(), Some("SPO"));
    }
}
