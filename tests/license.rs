//! The license usage source (top/skip and next links) and its events, against the simulator.

mod common;

use partnerwatch::model::EventKind;
use partnerwatch::sim::{SimConfig, Simulator};
use serde_json::json;

fn config(dir: &std::path::Path, sim: &Simulator) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("  referrals:").unwrap();
    let end = text.find("channels:").unwrap();
    let source = format!(
        "  license_usage:\n    base_url: {}\n    every: 1s\n    page_size: 7\n",
        sim.license_base_url()
    );
    std::fs::write(&path, format!("{}{source}{}", &text[..start], &text[end..])).unwrap();
    std::fs::write(
        dir.join("rules/all.yaml"),
        "- name: all\n  on: license.*\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn usage_pages_through_next_links_and_changes_only_when_reprocessed() {
    let sim = Simulator::start(
        SimConfig {
            referrals: 0,
            tenants: 20,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let p = common::pipeline(&config(dir.path(), &sim), &clock);
    let source = p.source("license_usage").unwrap();
    let baseline = p.poll(source, false).await.unwrap();
    assert_eq!(
        (baseline.pages, baseline.records),
        (6, 40),
        "40 rows, 7 a page"
    );
    assert_eq!(sim.state().stats.license_requests, 6);
    let keys = common::stored_ids(&p.store, "license_usage");
    assert!(
        keys.iter()
            .all(|k| k.split('|').count() == 3 && *k == k.to_lowercase()),
        "{keys:?}"
    );

    // Time passes within the same processing day: nothing is announced.
    let tenant = sim.state().licenses()[0]["customerTenantId"]
        .as_str()
        .unwrap()
        .to_string();
    let later = sim.state().now + jiff::SignedDuration::from_mins(30);
    sim.state().advance_to(later);
    let quiet = p.poll(source, false).await.unwrap();
    assert!(quiet.events.is_empty(), "same day, nothing reprocessed");

    // The next day's processing touches every row.
    let next_day = sim.state().now + jiff::SignedDuration::from_hours(24);
    sim.state().advance_to(next_day);
    let report = p.poll(source, false).await.unwrap();
    assert_eq!(report.count(EventKind::LicenseUsageChanged), 40);
    let row = report
        .events
        .iter()
        .find(|e| e.entity_id.starts_with(&tenant.to_lowercase()))
        .unwrap();
    assert_eq!(row.data["processedDateTime"], json!("2026-11-24T00:00:00"));
    assert!(row.data["licensesActive"]["delta"].is_i64());
}

/// "The response body includes a next link" — under no documented name. Every plausible
/// form is followed, and a server that gives no link and caps its pages below `top` is read
/// to the end (the next `skip` until an empty page), never cut short.
#[tokio::test]
async fn every_next_link_form_and_a_capped_server_without_links_are_read_to_the_end() {
    use partnerwatch::sim::{LicenseNext, Readings};
    for (next, cap) in [
        (LicenseNext::LinksNextUri, None),
        (LicenseNext::AtNextLink, None),
        (LicenseNext::ODataNextLink, None),
        (LicenseNext::None, None),
        (LicenseNext::None, Some(5)),
        (LicenseNext::LinksNextUri, Some(5)),
    ] {
        let sim = Simulator::start(
            SimConfig {
                referrals: 0,
                tenants: 20,
                readings: Readings {
                    license_next: next,
                    license_page_cap: cap,
                    ..Readings::default()
                },
                ..SimConfig::default()
            },
            0,
        )
        .await
        .unwrap();
        let total = sim.state().licenses().len();
        let dir = tempfile::tempdir().unwrap();
        let p = common::pipeline(&config(dir.path(), &sim), &common::clock());
        let report = p
            .poll(p.source("license_usage").unwrap(), false)
            .await
            .unwrap();
        assert_eq!(report.records, total, "{next:?} cap {cap:?}");
    }
}
