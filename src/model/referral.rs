//! The Partner Center Referral resource (api-docs/referrals-resources.txt): the enums the
//! code reasons about, tolerant of values the docs do not list and of any casing.
//! Records themselves travel as the JSON the API returned; see [`ReferralView`] for the
//! few fields partnerwatch reads.

use serde::Deserialize;

use super::api_enum;

api_enum!(
    /// `ReferralStatus`.
    ReferralStatus { None, New, Active, Closed }
);

api_enum!(
    /// `ReferralSubstatus`.
    ReferralSubstatus { None, Pending, Received, Accepted, Won, Lost, Declined, Expired, Error }
);

api_enum!(
    /// The direction of a referral: received by the partner or sent by it.
    Direction { Incoming, Outgoing }
);

/// The fields of a referral that partnerwatch itself reads. Every field is optional: a
/// record missing any of them is still stored, diffed and announced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferralView {
    #[serde(alias = "ID", alias = "Id")]
    pub id: Option<String>,
    #[serde(alias = "Status")]
    pub status: Option<ReferralStatus>,
    #[serde(alias = "Substatus", alias = "subStatus")]
    pub substatus: Option<ReferralSubstatus>,
    #[serde(alias = "Direction")]
    pub direction: Option<Direction>,
    #[serde(alias = "CreatedDateTime")]
    pub created_date_time: Option<String>,
    #[serde(alias = "ExpirationDateTime")]
    pub expiration_date_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_oddly_cased_values_round_trip() {
        let s: ReferralSubstatus = serde_json::from_str("\"ONHOLD\"").unwrap();
        assert_eq!(s, ReferralSubstatus::Other("ONHOLD".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"ONHOLD\"");
        let s: ReferralStatus = serde_json::from_str("\"active\"").unwrap();
        assert_eq!(s, ReferralStatus::Active);
    }

    #[test]
    fn view_reads_pascal_case_and_missing_fields() {
        let v: ReferralView =
            serde_json::from_str(r#"{"ID":"x","Status":"New","unknown":1}"#).unwrap();
        assert_eq!(v.id.as_deref(), Some("x"));
        assert_eq!(v.status, Some(ReferralStatus::New));
        assert!(v.substatus.is_none());
    }
}
