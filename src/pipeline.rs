//! One cycle of the data flow (DESIGN §1) for one source: sweep → diff against the store →
//! detect events → rules plan deliveries → one atomic commit → deliver from the outbox.
//! `partnerwatch poll`, `run` and `demo` all drive this same code.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::auth::TokenProvider;
use crate::clock::SharedClock;
use crate::config::{ChannelConfig, Config, ConfigError};
use crate::detect::expiry::{self, ExpiryClock};
use crate::detect::{self, RecordChange, SweepDiff};
use crate::http::Http;
use crate::model::Dataset;
use crate::model::{Delivery, Event, EventKind};
use crate::notify::outbox::{self, DeliveryReport};
use crate::notify::{self, Channel};
use crate::rules::{PlanContext, RuleSet};
use crate::sources::abss::AbssSource;
use crate::sources::license::LicenseSource;
use crate::sources::{referrals::ReferralsSource, Source, SourceError};
use crate::store::{
    CommitReport, KeyWrites, MetaKey, MetaValue, Side, Store, StoreError, SweepCommit, ThresholdKey,
};
use crate::templates::Templates;

/// How far back of the last sweep's start an incremental sweep asks: a referral updated
/// just before it, but listed only after it read that part of the list (or stamped by a
/// clock a little behind ours), is still seen. What it reads again costs one hash each.
pub const UPDATES_OVERLAP: SignedDuration = SignedDuration::from_mins(15);

/// Rules and templates, from the configured folders or from the set shipped in the binary.
#[derive(Debug)]
pub struct Assets {
    pub templates: Templates,
    pub rules: RuleSet,
}

impl Assets {
    /// Loads the folders named by the configuration.
    pub fn from_config(config: &Config) -> Result<Assets, ConfigError> {
        // The shipped digest templates serve a folder that has none of its own.
        let digest_defaults = crate::shipped::templates()
            .into_iter()
            .filter(|(p, _)| p.to_string_lossy().contains("digest_"))
            .collect();
        // A folder that cannot be read is reported against its entry in the file.
        let folder = |key: &str, e: ConfigError| match e {
            e @ ConfigError::Read { .. } => config.error_at(key, e),
            other => other,
        };
        let templates =
            Templates::load_dir_with(&config.templates_dir, &config.timezone, digest_defaults)
                .map_err(|e| folder("templates", e))?
                .with_links(config.links.clone());
        let rules = RuleSet::load_dir(&config.rules_dir, &config.channels, &templates)
            .map_err(|e| folder("rules", e))?;
        Ok(Assets { templates, rules })
    }

    /// The rules and templates shipped inside the binary, checked against `channels`.
    pub fn shipped(
        channels: &BTreeMap<String, ChannelConfig>,
        tz: &jiff::tz::TimeZone,
    ) -> Result<Assets, ConfigError> {
        let templates =
            Templates::from_sources(Path::new("templates"), crate::shipped::templates(), tz)?;
        let rules = RuleSet::from_sources(crate::shipped::rules(), channels, &templates)?;
        Ok(Assets { templates, rules })
    }
}

/// The configured sources, in polling order. A source needs a way to sign in: without one
/// the error names the `auth:` entry.
pub fn build_sources(
    config: &Config,
    http: &Http,
    tokens: &Result<TokenProvider, crate::auth::AuthError>,
) -> Result<Vec<Source>, ConfigError> {
    let tokens = || {
        tokens
            .clone()
            .map_err(|e| config.error_at("auth", format!("auth: {e}")))
    };
    let mut sources = Vec::new();
    if let Some(referrals) = &config.referrals {
        let source = ReferralsSource::new(referrals, http.clone(), tokens()?)
            .map_err(|e| config.error_at("sources.referrals", e))?;
        sources.push(Source::Referrals(source));
    }
    if let Some(license) = &config.license_usage {
        let source = LicenseSource::new(license, http.clone(), tokens()?)
            .map_err(|e| config.error_at("sources.license_usage", e))?;
        sources.push(Source::License(source));
    }
    if let Some(abss) = &config.abss {
        let tokens = tokens()?;
        let answered = Arc::default();
        for name in &abss.datasets {
            let dataset = Dataset::abss(&name.value)
                .expect("datasets were checked when the configuration loaded");
            let source = AbssSource::new(
                dataset,
                abss,
                http.clone(),
                tokens.clone(),
                Arc::clone(&answered),
            )
            .map_err(|e| config.error_at("sources.abss", e))?;
            sources.push(Source::Abss(source));
        }
    }
    Ok(sources)
}

/// How one poll runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct PollOptions {
    /// Write nothing; report what would be sent.
    pub dry_run: bool,
    /// Take a sweep that removes more than `max_removed_share` of the dataset.
    pub accept_removals: bool,
}

/// What one poll of one source did.
#[derive(Debug, Default, Clone)]
pub struct PollReport {
    pub source: &'static str,
    pub baseline: bool,
    /// Only what was updated since the last sweep was asked for (`incremental: true`).
    pub partial: bool,
    pub pages: u32,
    pub records: usize,
    pub unchanged: usize,
    pub events: Vec<Event>,
    pub deliveries: Vec<Delivery>,
    pub commit: Option<CommitReport>,
}

impl PollReport {
    pub fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }
}

/// Everything a cycle needs, built once.
#[derive(Debug)]
pub struct Pipeline {
    pub config: Config,
    pub store: Store,
    pub sources: Vec<Source>,
    pub assets: Assets,
    pub channels: Arc<BTreeMap<String, Channel>>,
    pub clock: SharedClock,
    /// How Copilot changes are judged, from `sources.abss`.
    pub judging: detect::copilot::Judging,
    /// The refresh token file, if delegated sign-in is configured (the digest warns before
    /// it lapses).
    refresh_file: Option<std::path::PathBuf>,
    /// A baseline writes its records to the store whenever this many bytes wait.
    pub baseline_batch_bytes: usize,
    /// The channels' delivery tasks.
    courier: outbox::Courier,
    /// Actions on referrals (accept, decline, win, lose, update), when the Referrals source
    /// is configured.
    pub desk: Option<crate::actions::apply::Desk>,
    /// The partner-level deal-registration eligibility: when it was last asked, what it said,
    /// and whether "not eligible" was said already.
    partner_eligibility: std::sync::Mutex<Option<(Timestamp, bool, bool)>>,
}

impl Pipeline {
    /// Opens the store and builds the sources and channels of `config`.
    pub fn build(config: Config, assets: Assets, clock: SharedClock) -> anyhow::Result<Pipeline> {
        let http = Http::new(config.http.clone());
        // One provider for everything: one token cache per audience, one refresh at a time.
        let tokens = TokenProvider::from_config(&config.auth, &config.state_dir);
        let channels = notify::build_all(&config, http.client(), tokens.as_ref().ok())?;
        let sources = build_sources(&config, &http, &tokens)?;
        crate::store::prepare_state_dir(&config.state_dir)?;
        let store = Store::open(&config.state_dir)?.with_history_versions(config.history_versions);
        let judging = copilot_judging(&config);
        let refresh_file = (config.auth.tenant_id.is_some() && config.auth.static_token.is_none())
            .then(|| config.state_dir.join(crate::auth::entra::REFRESH_FILE));
        let desk = match (&config.referrals, &tokens) {
            (Some(referrals), Ok(tokens)) => {
                let api =
                    crate::actions::api::ReferralApi::new(referrals, http.clone(), tokens.clone())
                        .map_err(|e| config.error_at("sources.referrals", e))?;
                Some(crate::actions::apply::Desk::new(store.clone(), api))
            }
            _ => None,
        };
        Ok(Pipeline {
            config,
            store,
            sources,
            assets,
            channels: Arc::new(channels),
            clock,
            judging,
            refresh_file,
            baseline_batch_bytes: detect::sweep::BASELINE_BATCH_BYTES,
            courier: outbox::Courier::default(),
            desk,
            partner_eligibility: std::sync::Mutex::new(None),
        })
    }

    /// The desk that acts on referrals, or what to configure for one.
    pub fn desk(&self) -> anyhow::Result<&crate::actions::apply::Desk> {
        self.desk.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "acting on referrals needs `sources.referrals` and a sign-in (`auth`) in {}",
                self.config.file.display()
            )
        })
    }

    /// The deliveries the rules make of `events` now (for actions' outcomes).
    pub fn announce(&self, events: &[Event]) -> Vec<Delivery> {
        self.plan(events, self.clock.now()).0
    }

    /// Carries out `request` on a referral: at most once, its outcome stored and announced.
    pub async fn act(
        &self,
        request: &crate::actions::apply::Request,
    ) -> anyhow::Result<crate::actions::apply::Outcome> {
        let announce = |events: &[Event]| self.announce(events);
        let outcome = self
            .desk()?
            .act(request, &announce, self.clock.now())
            .await?;
        if let crate::actions::apply::Outcome::Done { record } = &outcome {
            self.check_eligibility(std::slice::from_ref(record)).await;
        }
        Ok(outcome)
    }

    /// Asks Partner Center whether each of `records` that is a Shared referral in
    /// Active/Accepted may be registered as a deal, once per version of the referral, and
    /// raises `referral.registration_eligibility` with the answer. The partner-level check is
    /// asked first, at most once a day: a partner that is not eligible gets no per-referral
    /// checks, and is told so once.
    pub async fn check_eligibility(&self, records: &[serde_json::Value]) {
        let Some(desk) = &self.desk else { return };
        let wanted: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| detect::referrals::wants_eligibility(r))
            .filter(|r| {
                let id = detect::referrals::eligibility_event_id(r);
                !self.store.has_event(&id).unwrap_or(true)
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let now = self.clock.now();
        let known = *self.partner_eligibility.lock().expect("eligibility lock");
        let eligible = match known {
            Some((at, eligible, _))
                if now.duration_since(at) < jiff::SignedDuration::from_hours(24) =>
            {
                eligible
            }
            _ => match desk.api().partner_eligible(now).await {
                Ok(eligible) => {
                    let said = known.is_some_and(|(_, e, said)| !e && said);
                    *self.partner_eligibility.lock().expect("eligibility lock") =
                        Some((now, eligible, said));
                    eligible
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask Partner Center whether the partner may register deals; asking again on the next accepted referral");
                    return;
                }
            },
        };
        if !eligible {
            let mut cell = self.partner_eligibility.lock().expect("eligibility lock");
            if let Some((_, _, said)) = cell.as_mut() {
                if !*said {
                    *said = true;
                    tracing::warn!("Partner Center says this partner is not eligible for deal registration: accepted referrals are not checked one by one (asked again in a day)");
                }
            }
            return;
        }
        let mut events = Vec::new();
        for r in wanted {
            let id = r["id"].as_str().unwrap_or_default();
            match desk.api().eligibility(id, now).await {
                Ok(answer) => events.push(detect::referrals::eligibility_event(r, &answer, now)),
                Err(e) => {
                    tracing::warn!(referral = %id, error = %e, "cannot check the referral's deal-registration eligibility")
                }
            }
        }
        if events.is_empty() {
            return;
        }
        let (deliveries, throttle) = self.plan(&events, now);
        let commit = SweepCommit {
            dataset: Dataset::Referrals.name().to_string(),
            throttle,
            ..Default::default()
        };
        if let Err(e) = self.store.commit_sweep(&commit, &events, &deliveries) {
            tracing::error!(error = %e, "cannot store the deal-registration eligibility");
        }
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name() == name)
    }

    /// Sweeps one source and commits what changed, with the deliveries it asks for. With
    /// `dry_run` nothing is written. A failed sweep returns the error and changes nothing but
    /// the source's failure count: after `failing_after` failures in a row it raises
    /// `system.source_failing`, and the next complete sweep `system.source_recovered`.
    pub async fn poll(&self, source: &Source, dry_run: bool) -> Result<PollReport, SourceError> {
        let options = PollOptions {
            dry_run,
            ..PollOptions::default()
        };
        self.poll_with(source, options).await
    }

    /// [`Pipeline::poll`] with every option.
    pub async fn poll_with(
        &self,
        source: &Source,
        options: PollOptions,
    ) -> Result<PollReport, SourceError> {
        let result = self.sweep(source, options).await;
        // Referrals that became Active/Accepted: may they be registered as deals?
        if let (Ok(report), false) = (&result, options.dry_run) {
            let accepted: Vec<serde_json::Value> = report
                .events
                .iter()
                .filter(|e| {
                    matches!(
                        e.kind,
                        EventKind::ReferralStatusChanged | EventKind::ReferralNew
                    )
                })
                .map(|e| e.record.value().clone())
                .collect();
            self.check_eligibility(&accepted).await;
        }
        if !options.dry_run {
            if let Err(e) = self.note_health(source, result.as_ref().err()) {
                tracing::error!(source = source.name(), error = %e, "cannot record the source's health");
            }
            // The 14-day clock does not wait for the API: reminders fall due from what the
            // last good sweep stored.
            let failed_referrals = result.is_err() && source.dataset() == Dataset::Referrals;
            if failed_referrals {
                if let Err(e) = self.remind_from_store() {
                    tracing::error!(error = %e, "cannot check the referral clock");
                }
            }
        }
        result
    }

    /// What the digests are made from.
    pub fn digest_inputs(&self) -> crate::digest::DigestInputs<'_> {
        crate::digest::DigestInputs {
            store: &self.store,
            templates: &self.assets.templates,
            channels: &self.config.channels,
            digests: &self.config.digests,
            tz: &self.config.timezone,
            ranking: &self.judging.ranking,
            refresh_file: self.refresh_file.as_deref(),
        }
    }

    /// Counts failed sweeps per source and raises the `system.*` events about them.
    fn note_health(&self, source: &Source, error: Option<&SourceError>) -> Result<(), StoreError> {
        let name = source.name();
        let now = self.clock.now();
        let expired = match error {
            Some(_) => self
                .store
                .sweep_failures(Timestamp::UNIX_EPOCH, detect::health::forget_before(now))?,
            None => Vec::new(),
        };
        let update = detect::health::after_sweep(
            name,
            source.failing_after(),
            self.store.source_health(name)?,
            error,
            expired,
            now,
        );
        if update.meta.is_empty() {
            return Ok(());
        }
        let events: Vec<Event> = update.event.into_iter().collect();
        let (deliveries, throttle) = self.plan(&events, now);
        let commit = SweepCommit {
            dataset: name.to_string(),
            meta: update.meta,
            throttle,
            ..Default::default()
        };
        self.store.commit_sweep(&commit, &events, &deliveries)?;
        Ok(())
    }

    async fn sweep(
        &self,
        source: &Source,
        options: PollOptions,
    ) -> Result<PollReport, SourceError> {
        let dry_run = options.dry_run;
        let dataset = source.name();
        let baseline = self.store.baseline_at(dataset)?.is_none();
        // A baseline streams its records into the store as they arrive; one that fails (or
        // one that a crash interrupted earlier) leaves nothing behind.
        let streaming = baseline && !dry_run;
        if streaming {
            self.store.discard_records(dataset)?;
        }
        let result = self.sweep_into_store(source, options, baseline).await;
        if result.is_err() && streaming {
            if let Err(e) = self.store.discard_records(dataset) {
                tracing::error!(source = dataset, error = %e, "cannot drop the records of a failed baseline; the next baseline drops them");
            }
        }
        result
    }

    async fn sweep_into_store(
        &self,
        source: &Source,
        options: PollOptions,
        baseline: bool,
    ) -> Result<PollReport, SourceError> {
        let PollOptions {
            dry_run,
            accept_removals,
        } = options;
        let dataset = source.name();
        let keep: detect::sweep::Keep = match source {
            Source::Referrals(_) => expiry::waits,
            // Nothing of a Partner Insights baseline is needed after it is stored.
            Source::Abss(_) | Source::License(_) => detect::sweep::keep_none,
        };
        // A dry run must not write, so its baseline is not streamed to the store either.
        let mut diff = SweepDiff::new(&self.store, dataset, baseline && !dry_run, keep)?
            .with_batch_bytes(self.baseline_batch_bytes);
        let started = self.clock.now();
        // Removals are accepted only from a full sweep, so accepting them asks for one.
        let since = match (baseline || accept_removals, source.incremental()) {
            (false, Some(full_every)) => self.updated_since(dataset, full_every, started)?,
            _ => None,
        };
        let stats = source.sweep(&mut diff, started, since).await?;
        let mut outcome = diff.finish(!stats.partial)?;
        // An item without an id may be any stored record: none is taken as removed.
        if stats.without_id > 0 && !outcome.commit.removals.is_empty() {
            tracing::warn!(
                source = dataset,
                without_id = stats.without_id,
                held = outcome.commit.removals.len(),
                "items without an id came in this sweep; no record is taken as removed until a sweep has none"
            );
            outcome.commit.removals.clear();
            outcome.changes.retain(|c| c.new.is_some());
        }
        // A sweep that would empty much of a dataset is more likely a bad answer (an empty
        // page, a filter gone wrong) than a mass deletion: refused unless accepted once.
        let removed = outcome.commit.removals.len();
        let stored = outcome.stored_before;
        let share = source.max_removed_share();
        if !accept_removals
            && stored >= crate::config::sources::PLAUSIBLE_FROM
            && removed as f64 > share * stored as f64
        {
            return Err(SourceError::Implausible {
                dataset,
                removed,
                stored,
                share,
            });
        }
        let now = self.clock.now();
        let dataset_kind = source.dataset();
        // The referral clock goes first: it reads the changes before the detector takes them.
        let (clock_events, expiry_updates) = if dataset_kind == Dataset::Referrals {
            self.run_expiry_clock(&outcome.changes, now)?
        } else {
            (Vec::new(), Vec::new())
        };
        let remembered = |key: &ThresholdKey| {
            self.store
                .threshold_side(key)
                .ok()
                .flatten()
                .map(|side| side == Side::Above)
        };
        let judge = detect::Judge {
            baseline,
            now,
            copilot: &self.judging,
            remembered: &remembered,
        };
        let (mut events, meta) =
            detect::detect(dataset_kind, std::mem::take(&mut outcome.changes), &judge);
        // A referral that left the list after its deadline expired; it was not removed.
        let expired: std::collections::HashSet<&str> = clock_events
            .iter()
            .filter(|e| e.kind == EventKind::ReferralExpired)
            .map(|e| e.entity_id.as_str())
            .collect();
        events.retain(|e| {
            e.kind != EventKind::ReferralRemoved || !expired.contains(e.entity_id.as_str())
        });
        events.extend(clock_events);
        // An event already in the log (the same change seen again, or the expiry seen first by
        // the clock and then by the API) is not announced again.
        events.retain(|e| !self.store.has_event(&e.id).unwrap_or(false));
        // A dry run offers no actions (their records would be written).
        let (deliveries, throttle_marks) = self.plan_messages(&events, now);
        let mut report = PollReport {
            source: dataset,
            baseline,
            partial: stats.partial,
            pages: stats.pages,
            records: outcome.seen,
            unchanged: outcome.unchanged,
            events,
            deliveries,
            commit: None,
        };
        if !dry_run {
            self.add_buttons(&report.events, &mut report.deliveries, now);
            let mut commit = outcome.commit;
            commit.expiry = expiry_updates;
            commit.meta = meta;
            commit.meta.push((
                MetaKey::SweepStarted(dataset.to_string()),
                Some(MetaValue::Time(started)),
            ));
            if !stats.partial {
                commit.meta.push((
                    MetaKey::FullSweep(dataset.to_string()),
                    Some(MetaValue::Time(started)),
                ));
            }
            commit.throttle = throttle_marks;
            commit.completed_at = Some(now);
            report.commit = Some(self.store.commit_sweep(
                &commit,
                &report.events,
                &report.deliveries,
            )?);
        }
        tracing::info!(
            source = dataset,
            baseline,
            full = !stats.partial,
            pages = report.pages,
            records = report.records,
            unchanged = report.unchanged,
            events = report.events.len(),
            deliveries = report.deliveries.len(),
            dry_run,
            "sweep complete"
        );
        Ok(report)
    }

    /// What an incremental sweep of `dataset` asks for at `now`: the referrals updated since
    /// the last good sweep started, less [`UPDATES_OVERLAP`]; `None` (a full sweep) when the
    /// last full sweep is `full_every` old, or there is none.
    fn updated_since(
        &self,
        dataset: &str,
        full_every: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let (Some(last), Some(full)) = self.store.sweep_started_at(dataset)? else {
            return Ok(None);
        };
        let full_every = SignedDuration::try_from(full_every).unwrap_or(SignedDuration::MAX);
        if now.duration_since(full) >= full_every {
            return Ok(None);
        }
        Ok(last.checked_sub(UPDATES_OVERLAP).ok())
    }

    /// Checks the referral clock against the stored referrals while their sweeps fail, and
    /// commits the reminders that fall due; each says it is based on the last good sweep.
    fn remind_from_store(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        if self.store.baseline_at(Dataset::Referrals.name())?.is_none() {
            return Ok(());
        }
        let (mut events, expiry) = self.run_expiry_clock(&[], now)?;
        let last = self.store.last_sweep_at(Dataset::Referrals.name())?;
        for e in &mut events {
            e.data["last_good_sweep"] = serde_json::json!(last.map(|t| t.to_string()));
        }
        events.retain(|e| !self.store.has_event(&e.id).unwrap_or(false));
        if events.is_empty() && expiry.is_empty() {
            return Ok(());
        }
        let (deliveries, throttle) = self.plan(&events, now);
        let commit = SweepCommit {
            dataset: Dataset::Referrals.name().to_string(),
            expiry,
            throttle,
            ..Default::default()
        };
        self.store.commit_sweep(&commit, &events, &deliveries)?;
        tracing::info!(
            reminders = events.len(),
            "the Referrals API is failing: reminders from the last good sweep"
        );
        Ok(())
    }

    /// Moves the referral clock: entries follow this sweep's changes, then every entry is
    /// checked against `now` and the rules' reminder thresholds.
    fn run_expiry_clock(
        &self,
        changes: &[RecordChange],
        now: Timestamp,
    ) -> Result<(Vec<Event>, KeyWrites), StoreError> {
        let mut clock = ExpiryClock::load(self.store.expiry_entries()?);
        let mut events = clock.left_after_deadline(changes, now);
        clock.follow(changes);
        let swept: HashMap<&str, &crate::model::Doc> = changes
            .iter()
            .filter_map(|c| c.new.as_ref().map(|(_, r)| (c.entity_id.as_str(), r)))
            .collect();
        let records = self.store.records(Dataset::Referrals.name())?;
        let thresholds = self.assets.rules.expiry_thresholds();
        events.extend(clock.check(&thresholds, now, |id| {
            swept
                .get(id)
                .map(|r| r.value().clone())
                .or_else(|| records.get(id).ok().flatten().and_then(|r| r.json().ok()))
        }));
        Ok((events, clock.into_writes()))
    }

    /// The deliveries the events ask for, and the throttle marks they set.
    fn plan(&self, events: &[Event], now: Timestamp) -> (Vec<Delivery>, Vec<(String, Timestamp)>) {
        let (mut deliveries, marks) = self.plan_messages(events, now);
        self.add_buttons(events, &mut deliveries, now);
        (deliveries, marks)
    }

    /// [`Pipeline::plan`] without the buttons of actions (which are stored when offered).
    fn plan_messages(
        &self,
        events: &[Event],
        now: Timestamp,
    ) -> (Vec<Delivery>, Vec<(String, Timestamp)>) {
        let store = &self.store;
        let last_sent = |key: &str| store.throttle_mark(key).ok().flatten();
        let mut ctx = PlanContext {
            now,
            tz: &self.config.timezone,
            last_sent: &last_sent,
            marks: BTreeMap::new(),
        };
        let deliveries: Vec<Delivery> = events
            .iter()
            .flat_map(|e| {
                self.assets
                    .rules
                    .plan(e, &self.assets.templates, &self.config.channels, &mut ctx)
            })
            .collect();
        (deliveries, ctx.marks.into_iter().collect())
    }

    /// Messages about a referral to the chat of `actions.telegram` carry buttons for what
    /// can be done to it now, and its Partner Center link.
    fn add_buttons(&self, events: &[Event], deliveries: &mut [Delivery], now: Timestamp) {
        let (Some(desk), Some(chat)) = (
            &self.desk,
            self.config
                .actions
                .as_ref()
                .and_then(|a| a.telegram.as_ref()),
        ) else {
            return;
        };
        let by_id: HashMap<&str, &Event> = events.iter().map(|e| (e.id.as_str(), e)).collect();
        for d in deliveries.iter_mut().filter(|d| d.channel == chat.channel) {
            let Some(e) = by_id.get(d.event_id.as_str()) else {
                continue;
            };
            let about_referral = e.kind.as_str().starts_with("referral.")
                && !matches!(e.kind, EventKind::ReferralActed);
            if !about_referral || e.record.is_null() {
                continue;
            }
            let link = self.config.links.referral(&e.entity_id);
            match desk.buttons(&e.record, &link, now) {
                Ok(rows) => d.buttons = rows,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot offer actions; the message goes without buttons")
                }
            }
        }
    }

    /// Sends what is due in the outbox. Dead letters become `system.delivery_dead` events
    /// (not for messages that were themselves about dead letters), whose messages are sent in
    /// the same call.
    pub async fn deliver(&self) -> anyhow::Result<DeliveryReport> {
        self.deliver_within(None).await
    }

    /// [`Pipeline::deliver`], waiting for the channels at most `wait`: a channel still busy
    /// then goes on in the background and reports in a later call.
    pub async fn deliver_within(
        &self,
        wait: Option<std::time::Duration>,
    ) -> anyhow::Result<DeliveryReport> {
        let pass = || {
            self.courier.pass(
                &self.store,
                &self.channels,
                &self.config.delivery,
                &self.clock,
                wait,
            )
        };
        let mut report = pass().await?;
        let now = self.clock.now();
        let events: Vec<Event> = report
            .dead_letters
            .iter()
            .filter(|d| d.kind != Some(EventKind::SystemDeliveryDead))
            .map(|d| detect::system::delivery_dead(d, now))
            .collect();
        if !events.is_empty() {
            let (deliveries, throttle) = self.plan(&events, now);
            let commit = SweepCommit {
                dataset: "partnerwatch".into(),
                throttle,
                ..Default::default()
            };
            self.store.commit_sweep(&commit, &events, &deliveries)?;
            report.add(pass().await?);
        }
        Ok(report)
    }
}

/// How Copilot changes are judged, from `sources.abss`.
fn copilot_judging(config: &Config) -> detect::copilot::Judging {
    let mut judging = detect::copilot::Judging::default();
    if let Some(abss) = &config.abss {
        if let Some(r) = &abss.health_ranking {
            judging.ranking = r.clone();
        }
        judging.thresholds = abss.thresholds.clone();
        judging.hysteresis = abss.hysteresis;
    }
    judging
}

/// What the Telegram listener of `actions.telegram` uses of the running service.
impl crate::actions::telegram::Host for Pipeline {
    fn desk(&self) -> Option<&crate::actions::apply::Desk> {
        self.desk.as_ref()
    }

    fn announce(&self, events: &[Event]) -> Vec<Delivery> {
        Pipeline::announce(self, events)
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn deliver(&self) {
        if let Err(e) = self
            .deliver_within(Some(std::time::Duration::from_secs(10)))
            .await
        {
            tracing::warn!(error = %format!("{e:#}"), "the outcome's messages wait in the outbox");
        }
    }

    async fn acted(&self, record: &serde_json::Value) {
        self.check_eligibility(std::slice::from_ref(record)).await;
    }

    fn expiring(&self) -> Vec<(serde_json::Value, Timestamp)> {
        let Ok(records) = self.store.records(Dataset::Referrals.name()) else {
            return Vec::new();
        };
        let mut out: Vec<(serde_json::Value, Timestamp)> = records
            .iter()
            .filter_map(|r| r.ok())
            .filter_map(|(_, r)| r.json().ok())
            // On the clock: New, waiting for this partner's answer (the clock's own test).
            .filter_map(|r| crate::detect::expiry::deadline_of(&r).map(|d| (r, d)))
            .collect();
        out.sort_by_key(|(_, d)| *d);
        out
    }

    fn find(&self, text: &str) -> Vec<serde_json::Value> {
        let Ok(records) = self.store.records(Dataset::Referrals.name()) else {
            return Vec::new();
        };
        if let Ok(Some(r)) = records.get(text) {
            return r.json().into_iter().collect();
        }
        let wanted = text.to_lowercase();
        if wanted.is_empty() {
            return Vec::new();
        }
        records
            .iter()
            .filter_map(|r| r.ok())
            .filter_map(|(_, r)| r.json().ok())
            .filter(|r| {
                r["customerProfile"]["name"]
                    .as_str()
                    .is_some_and(|n| n.to_lowercase().contains(&wanted))
            })
            .take(50)
            .collect()
    }

    fn link(&self, id: &str) -> String {
        self.config.links.referral(id)
    }
}
