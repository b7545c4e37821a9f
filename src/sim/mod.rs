//! The built-in Partner Center simulator: an axum server on 127.0.0.1 that serves the APIs
//! partnerwatch reads as `api-docs/` describe them, over generated data whose state moves on
//! the simulator's own clock. One module per simulated API, each with its generator, its
//! handlers and its `routes()`:
//! - [`referrals`]: the Referrals API v1.0 list endpoint — OData `$filter`, `$orderby`,
//!   `$top`, `@odata.count`, `@odata.nextLink` with an opaque `$skiptoken` (and, like the
//!   documentation's sample, a next link whose scheme and path differ from the request's);
//! - [`abss`]: Partner Insights (Copilot, MCI, partner referrals, summaries);
//! - [`license`]: Partner Center analytics license usage;
//! - [`auth`]: Entra's device-code and token endpoints and a managed identity endpoint;
//! - [`faults`]: injected errors, broken bodies and delays; `control`: clock and counters.
//!
//! Tests drive it in process through [`Simulator`]; anyone can drive a running one over
//! HTTP under `/_sim/` (advance the clock, add, change or delete referrals, inject faults).
//! It requires `Authorization: Bearer <token>` and answers 401 without. Must never: take an
//! API value (a health class, an audience, an enum) from the product's code — it spells
//! them from `api-docs/`, so that it can disagree with the product.

pub mod abss;
pub mod auth;
mod control;
pub mod faults;
pub mod license;
pub mod odata;
pub mod referrals;
mod request;
mod server;
mod updates;

pub use faults::{Fault, FaultAction};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The simulator's state as every handler shares it.
pub(crate) type Shared = Arc<Mutex<SimState>>;

/// How a simulator starts.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random choice: the same seed gives the same referrals and the same life.
    pub seed: u64,
    /// Referrals that exist at the start, created over the 30 days before `start`.
    pub referrals: usize,
    /// Records per page unless `$top` asks for fewer.
    pub page_size: usize,
    /// The bearer token it accepts.
    pub token: String,
    /// The simulated time at the start.
    pub start: Timestamp,
    /// New referrals per simulated day.
    pub arrivals_per_day: f64,
    /// Customer tenants with a Copilot opportunity (Partner Insights).
    pub tenants: usize,
    /// Where the docs allow two readings, which one is served.
    pub readings: Readings,
}

/// Where api-docs/ allow more than one reading, which one the simulator serves. The defaults
/// are the less convenient readings; a test may switch one to exercise the other.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    pub health: HealthWording,
    pub order: RowOrder,
    pub declined: Declined,
    pub license_next: LicenseNext,
    pub odata_count: ODataCount,
    pub no_data: NoData,
    /// Rows per license usage page at most, whatever `top` asks (the docs give 10,000).
    pub license_page_cap: Option<usize>,
    pub updated_filter: UpdatedFilter,
}

/// Whether the Referrals list takes a `$filter` on `updatedDateTime`. The docs list the field
/// among the `$orderby` parameters and show `$filter` only on others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpdatedFilter {
    /// Served as OData v4 has it (an unquoted `DateTimeOffset`).
    #[default]
    Served,
    /// Refused with 400, as a server that filters only the documented fields would.
    Refused,
}

/// What a Partner Insights endpoint answers when the partner has no such data. Every
/// endpoint documents "404 Not Found: The resource isn't found or not available with the
/// given input parameters".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoData {
    /// 404.
    #[default]
    NotFound,
    /// 200 with an empty list.
    EmptyList,
}

/// What a Referrals page's `@odata.count` counts. The docs' sample has `"@odata.count": 1`
/// with one item and a next link: the page's rows or the whole list's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ODataCount {
    /// The whole list, on every page.
    #[default]
    Total,
    /// The rows of this page.
    PerPage,
}

/// How a license usage page points at the next one. The docs say only that "the response
/// body includes a next link".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LicenseNext {
    /// `"links": {"next": {"uri": …}}`, as other Partner Center analytics answers have it.
    #[default]
    LinksNextUri,
    /// `"@nextLink": …`.
    AtNextLink,
    /// `"@odata.nextLink": …`.
    ODataNextLink,
    /// No link at all: the client must ask with the next `skip` itself.
    None,
}

/// The order of the rows of a paged Partner Insights list. The docs offer `sortColumn` and
/// `sortDirection` and say nothing of the order without them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// A different order on every request unless a `sortColumn` the rows have is asked for.
    #[default]
    ShuffledUnlessSorted,
    /// Always the same order.
    Stable,
}

/// Whether `/partnerReferrals` lists declined referrals. The docs name the parameter
/// `showDeclinedReferrals` and not its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Declined {
    /// Declined ones only with `showDeclinedReferrals=true`.
    #[default]
    HiddenUnlessAsked,
    /// Always listed.
    Listed,
}

/// How a tenant's `adoptionStatus` is spelled. The docs give the eight classes only as keys
/// of `/adoptionSummary`; per tenant the field is a bare string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HealthWording {
    /// Exactly as the adoption summary's keys.
    Documented,
    /// Tenants spell the classes three ways: as documented, in lower case with "and" and
    /// spaced slashes, and in CamelCase without punctuation.
    #[default]
    Variants,
    /// As `Variants`, and the worst class comes under a name the docs never give.
    WithUnknown,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            referrals: 40,
            page_size: 100,
            token: "partnerwatch-sim-token".into(),
            start: "2026-11-23T08:00:00Z".parse().expect("valid time"),
            arrivals_per_day: 3.0,
            tenants: 20,
            readings: Readings::default(),
        }
    }
}

/// Counters a test can read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to the referrals list endpoint, including refused ones.
    pub list_requests: u64,
    /// Of those, the ones answered 200 with a page.
    pub pages_served: u64,
    pub unauthorized: u64,
    pub faults_applied: u64,
    /// Requests to the Partner Insights endpoints.
    pub abss_requests: u64,
    /// Requests to the license usage endpoint.
    pub license_requests: u64,
    /// `GET …/referrals/{id}` requests answered.
    pub single_reads: u64,
    /// `PATCH …/referrals/{id}` requests signed in, and those that changed the referral.
    pub patches: u64,
    pub patches_applied: u64,
    /// PATCH requests refused with 412 (a stale `If-Match`).
    pub conflicts: u64,
    /// `POST …/dealregistrations/eligibility` requests answered.
    pub eligibility_checks: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    filter: Option<odata::Filter>,
    order: odata::OrderBy,
    top: usize,
    offset: usize,
    page: u32,
}

/// The simulator's world.
#[derive(Debug)]
pub struct SimState {
    pub now: Timestamp,
    rng: StdRng,
    referrals: Vec<Value>,
    tenants: Vec<Value>,
    mci_rows: Vec<Value>,
    partner_referrals: Vec<Value>,
    licenses: Vec<Value>,
    processed_day: String,
    arrivals_per_day: f64,
    page_size: usize,
    token: String,
    cursors: HashMap<String, Cursor>,
    faults: Vec<Fault>,
    pub stats: SimStats,
    /// The token service.
    pub auth: auth::AuthSim,
    base_url: String,
    readings: Readings,
    /// What `GET …/partners/dealregistrationeligibility` answers.
    partner_eligible: bool,
    /// How long a PATCH waits, once applied, before it answers (a lost answer, a crash
    /// while it is on its way).
    patch_answer_delay: Option<std::time::Duration>,
}

impl SimState {
    fn new(config: &SimConfig, base_url: String) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut referrals = Vec::with_capacity(config.referrals);
        // Spread the existing referrals over the last 30 days, oldest first, and let each
        // live its life up to now so that states are as varied as in a real tenant.
        let span_hours = 30 * 24;
        for i in 0..config.referrals {
            let age = span_hours - (i as i64 * span_hours / config.referrals.max(1) as i64);
            let created = config.start - SignedDuration::from_hours(age);
            let mut r = referrals::new_referral(&mut rng, created, &base_url);
            let mut t = created;
            while t < config.start {
                t += SignedDuration::from_hours(1);
                referrals::live_one_hour(&mut rng, &mut r, t.min(config.start));
            }
            referrals.push(r);
        }
        let tenants: Vec<Value> = (0..config.tenants as u64)
            .map(|n| abss::new_tenant(&mut rng, n))
            .collect();
        let mci_rows = tenants
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(n, t)| abss::new_mci_row(&mut rng, n as u64, t))
            .collect();
        let partner_referrals = tenants
            .iter()
            .step_by(3)
            .enumerate()
            .map(|(n, t)| abss::new_partner_referral(&mut rng, n as u64, t))
            .collect();
        let processed_day = config.start.strftime("%Y-%m-%d").to_string();
        let licenses = tenants
            .iter()
            .flat_map(|t| license::rows_for(&mut rng, t, &processed_day))
            .collect();
        Self {
            now: config.start,
            rng,
            referrals,
            tenants,
            mci_rows,
            partner_referrals,
            licenses,
            processed_day,
            arrivals_per_day: config.arrivals_per_day,
            page_size: config.page_size.max(1),
            token: config.token.clone(),
            cursors: HashMap::new(),
            faults: Vec::new(),
            stats: SimStats::default(),
            readings: config.readings.clone(),
            auth: auth::AuthSim::new(),
            base_url,
            partner_eligible: true,
            patch_answer_delay: None,
        }
    }

    /// Moves the clock to `to`, hour by hour: referrals arrive, are accepted, won, lost,
    /// declined, and expire 14 days after arrival if still New. Returns how many changed.
    pub fn advance_to(&mut self, to: Timestamp) -> usize {
        let mut changed = 0;
        while self.now < to {
            let step_end = (self.now + SignedDuration::from_hours(1)).min(to);
            let fraction = step_end.duration_since(self.now).as_secs_f64() / 3600.0;
            self.now = step_end;
            for r in &mut self.referrals {
                if referrals::live_one_hour(&mut self.rng, r, step_end) {
                    changed += 1;
                }
            }
            for t in &mut self.tenants {
                if abss::live_one_hour(&mut self.rng, t) {
                    changed += 1;
                }
            }
            let (milestones, stages) = abss::mci_steps();
            for row in &mut self.mci_rows {
                let moved =
                    abss::advance_one_hour(&mut self.rng, row, "milestone", milestones, 0.01);
                let staged = abss::advance_one_hour(&mut self.rng, row, "stage", stages, 0.005);
                changed += usize::from(moved || staged);
            }
            for r in &mut self.partner_referrals {
                changed += usize::from(abss::advance_one_hour(
                    &mut self.rng,
                    r,
                    "referralStatus",
                    abss::referral_statuses(),
                    0.01,
                ));
            }
            let day = step_end.strftime("%Y-%m-%d").to_string();
            if day != self.processed_day {
                license::reprocess(&mut self.rng, &mut self.licenses, &day);
                self.processed_day = day;
                changed += self.licenses.len();
            }
            let p = (self.arrivals_per_day / 24.0 * fraction).min(1.0);
            if rand::Rng::random_bool(&mut self.rng, p) {
                let r = referrals::new_referral(&mut self.rng, step_end, &self.base_url);
                self.referrals.push(r);
                changed += 1;
            }
        }
        changed
    }

    /// Moves the clock to `to` with no life at all: nothing arrives or changes on its own, for
    /// scripted timelines where every change is the test's.
    pub fn set_now(&mut self, to: Timestamp) {
        self.now = to;
    }

    /// Adds `count` new referrals arriving now; returns their ids.
    pub fn add_referrals(&mut self, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| {
                let r = referrals::new_referral(&mut self.rng, self.now, &self.base_url);
                let id = r["id"].as_str().expect("generated id").to_string();
                self.referrals.push(r);
                id
            })
            .collect()
    }

    /// Applies a JSON merge patch to a referral and marks it updated. False if unknown.
    pub fn patch_referral(&mut self, id: &str, patch: &Value) -> bool {
        let now = self.now;
        match self.referrals.iter_mut().find(|r| r["id"] == id) {
            Some(r) => {
                referrals::merge_patch(r, patch);
                referrals::touch(&mut self.rng, r, now);
                true
            }
            None => false,
        }
    }

    /// Whether the partner is approved for deal registration (the partner-level check).
    pub fn set_partner_eligible(&mut self, eligible: bool) {
        self.partner_eligible = eligible;
    }

    /// Makes every PATCH wait `delay` after it is applied before it answers.
    pub fn delay_patch_answers(&mut self, delay: Option<std::time::Duration>) {
        self.patch_answer_delay = delay;
    }

    /// Deletes a referral. False if unknown.
    pub fn remove_referral(&mut self, id: &str) -> bool {
        let before = self.referrals.len();
        self.referrals.retain(|r| r["id"] != id);
        self.referrals.len() != before
    }

    /// Replaces a referral with raw JSON as it should be served (for odd-input tests).
    pub fn insert_raw(&mut self, record: Value) {
        self.referrals.push(record);
    }

    pub fn referrals(&self) -> &[Value] {
        &self.referrals
    }

    /// The Copilot opportunities, one per tenant.
    pub fn tenants(&self) -> &[Value] {
        &self.tenants
    }

    /// The license usage rows.
    pub fn licenses(&self) -> &[Value] {
        &self.licenses
    }

    /// The MCI partner performance rows.
    pub fn mci_rows(&self) -> &[Value] {
        &self.mci_rows
    }

    /// The partner referrals offered in Partner Insights.
    pub fn partner_referrals(&self) -> &[Value] {
        &self.partner_referrals
    }

    /// Applies a JSON merge patch to the license usage row at `index`. False if there is none.
    pub fn patch_license(&mut self, index: usize, patch: &Value) -> bool {
        match self.licenses.get_mut(index) {
            Some(r) => {
                referrals::merge_patch(r, patch);
                true
            }
            None => false,
        }
    }

    /// Applies a JSON merge patch to the MCI row with `claim_id`. False if unknown.
    pub fn patch_mci_row(&mut self, claim_id: i64, patch: &Value) -> bool {
        match self.mci_rows.iter_mut().find(|r| r["claimID"] == claim_id) {
            Some(r) => {
                referrals::merge_patch(r, patch);
                true
            }
            None => false,
        }
    }

    /// Applies a JSON merge patch to a partner referral. False if unknown.
    pub fn patch_partner_referral(&mut self, id: &str, patch: &Value) -> bool {
        match self
            .partner_referrals
            .iter_mut()
            .find(|r| r["partnerReferralId"] == id)
        {
            Some(r) => {
                referrals::merge_patch(r, patch);
                true
            }
            None => false,
        }
    }

    /// Takes every MCI row away (a partner with no MCI engagements).
    pub fn clear_mci_rows(&mut self) {
        self.mci_rows.clear();
    }

    /// Applies a JSON merge patch to a tenant's Copilot opportunity. False if unknown.
    pub fn patch_tenant(&mut self, tenant_id: &str, patch: &Value) -> bool {
        match self.tenants.iter_mut().find(|t| t["tenantId"] == tenant_id) {
            Some(t) => {
                referrals::merge_patch(t, patch);
                true
            }
            None => false,
        }
    }

    /// Adds `count` tenants; returns their ids.
    pub fn add_tenants(&mut self, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| {
                let n = self.tenants.len() as u64 + 1000;
                let t = abss::new_tenant(&mut self.rng, n);
                let id = t["tenantId"].as_str().expect("generated id").to_string();
                self.tenants.push(t);
                id
            })
            .collect()
    }

    /// Removes a tenant's opportunity. False if unknown.
    pub fn remove_tenant(&mut self, tenant_id: &str) -> bool {
        let before = self.tenants.len();
        self.tenants.retain(|t| t["tenantId"] != tenant_id);
        self.tenants.len() != before
    }

    pub fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The fault to apply to page `page`, if any, using up one of its `times`.
    fn take_fault(&mut self, page: u32) -> Option<FaultAction> {
        let i = self
            .faults
            .iter()
            .position(|f| f.times > 0 && f.page.is_none_or(|p| p == page))?;
        let f = &mut self.faults[i];
        f.times -= 1;
        let action = f.action.clone();
        if f.times == 0 {
            self.faults.remove(i);
        }
        self.stats.faults_applied += 1;
        Some(action)
    }
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    addr: SocketAddr,
    token: String,
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1:port` (0 picks a free port) in the current runtime.
    pub async fn start(config: SimConfig, port: u16) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(SimState::new(&config, base_url)));
        let app = server::router(Arc::clone(&state));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(Simulator {
            state,
            addr,
            token: config.token,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Entra ID authority, as `auth.authority` takes it.
    pub fn authority(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The managed identity endpoint, as App Service sets `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!("http://{}/msi/token", self.addr)
    }

    /// The Partner Center analytics base URL, as `sources.license_usage.base_url` takes it.
    pub fn license_base_url(&self) -> String {
        format!("http://{}/partner", self.addr)
    }

    /// The Partner Insights base URL for `version` (`v1.3` or `v1.5`), as `sources.abss.base_url` takes it.
    pub fn abss_base_url(&self, version: &str) -> String {
        format!("http://{}/abss/{version}/api", self.addr)
    }

    /// The Referrals API base URL, as `sources.referrals.base_url` takes it.
    pub fn referrals_base_url(&self) -> String {
        format!("http://{}/v1.0", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The simulator's state, to read or change it.
    pub fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("simulator state lock")
    }
}
