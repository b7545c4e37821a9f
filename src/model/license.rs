//! The license usage row of Partner Center analytics (api-docs/license-usage-analytics.txt),
//! the one record whose fields a detector reads by type: `Option` where the API may leave a
//! field out or null, and the casing variants the pages use (`licenseActive`/`licensesActive`).
//! Records are stored and diffed as the API sent them.

use serde::{Deserialize, Serialize};

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
