//! The license section: the largest net drops of active licenses.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Drop {
    pub customer: String,
    pub product: String,
    pub workload: String,
    pub from: i64,
    pub to: i64,
    pub delta: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Licenses {
    pub drops: Vec<Drop>,
}

pub(super) fn license_section(events: &[Event]) -> Option<Licenses> {
    // Net over the period per row: the first `from`, the last `to`.
    let mut net: BTreeMap<String, Drop> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == EventKind::LicenseUsageChanged)
    {
        let Some(ActiveLicenses {
            from: Some(from),
            to: Some(to),
            ..
        }) = UsageChanged::from_data(&e.data).map(|d| d.licenses_active)
        else {
            continue;
        };
        net.entry(e.entity_id.clone())
            .and_modify(|d| {
                d.to = to;
                d.delta = d.to - d.from;
            })
            .or_insert(Drop {
                customer: tenant_name(&e.record),
                product: text(&e.record, "productName"),
                workload: text(&e.record, "workloadName"),
                from,
                to,
                delta: to - from,
            });
    }
    let mut drops: Vec<Drop> = net.into_values().filter(|d| d.delta < 0).collect();
    drops.sort_by(|a, b| a.delta.cmp(&b.delta).then(a.customer.cmp(&b.customer)));
    drops.truncate(TOP);
    (!drops.is_empty()).then_some(Licenses { drops })
}
