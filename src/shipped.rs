//! The rules and templates shipped inside the binary (copies of the repository's `rules/`
//! and `templates/` folders), so that `partnerwatch demo` needs no files at all.

use std::path::PathBuf;

macro_rules! files {
    ($dir:literal: $($name:literal),+ $(,)?) => {
        vec![$((PathBuf::from(concat!($dir, "/", $name)), include_str!(concat!("../", $dir, "/", $name)).to_string())),+]
    };
}

/// The shipped templates, as (path, text).
pub fn templates() -> Vec<(PathBuf, String)> {
    files!(
        "templates":
        "referral_new.text.hbs",
        "referral_changed.text.hbs",
        "referral_removed.text.hbs",
        "referral_expiring.text.hbs",
        "referral_expired.text.hbs",
        "referral_status_changed.text.hbs",
        "referral_closed.text.hbs",
        "referral_registration_changed.text.hbs",
        "referral_acted.text.hbs",
        "referral_registration_eligibility.text.hbs",
        "system_source_failing.text.hbs",
        "system_source_recovered.text.hbs",
        "system_delivery_dead.text.hbs",
        "system_auth_failed.text.hbs",
        "copilot_new.text.hbs",
        "copilot_changed.text.hbs",
        "copilot_removed.text.hbs",
        "copilot_health_changed.text.hbs",
        "copilot_threshold_crossed.text.hbs",
        "copilot_summary_changed.text.hbs",
        "adoption_summary_changed.text.hbs",
        "mci_new.text.hbs",
        "mci_changed.text.hbs",
        "mci_milestone_changed.text.hbs",
        "mci_stage_changed.text.hbs",
        "mci_summary_changed.text.hbs",
        "partner_referral_new.text.hbs",
        "partner_referral_changed.text.hbs",
        "partner_referral_status_changed.text.hbs",
        "license_new.text.hbs",
        "license_usage_changed.text.hbs",
        "digest_weekly.text.hbs",
        "digest_weekly.html.hbs",
    )
}

/// The shipped rules, as (path, text).
pub fn rules() -> Vec<(PathBuf, String)> {
    files!("rules": "referrals.yaml")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The repository's folders and the embedded copies hold the same files.
    #[test]
    fn embedded_files_match_the_folders() {
        for (dir, embedded) in [("templates", super::templates()), ("rules", super::rules())] {
            let on_disk: BTreeSet<String> =
                std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
            let listed: BTreeSet<String> = embedded
                .iter()
                .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                on_disk, listed,
                "update src/shipped.rs to embed every file of {dir}/"
            );
        }
    }
}
