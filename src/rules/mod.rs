//! Rules (`rules/*.yaml`, DESIGN §4): which events go to which channels with which template.
//! Every file is a YAML list of rules; every mistake is reported as `file:line:column`.
//! A rule's `on` (one kind, a list, or globs such as `referral.*`) is resolved against the
//! known event kinds when the rule is loaded, so a typo is an error, not a silent no-match.
//!
//! Unknown keys are refused with a clear error rather than ignored: a rule that silently
//! sends more than its author wrote is worse than one that does not load.

pub mod condition;
pub mod quiet;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{ChannelConfig, ConfigError, Every, Located};
use crate::detect::expiry::DEFAULT_THRESHOLDS;
use crate::model::event_data::{EventData, Expiring};
use crate::model::{Delivery, Event, EventKind};
use crate::templates::Templates;

/// `on:` as written: one pattern or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OnSpec {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    name: Spanned<String>,
    on: Spanned<OnSpec>,
    channels: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    template: Option<Spanned<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default)]
    before: Option<Spanned<Vec<Every>>>,
    #[serde(default)]
    throttle: Option<Spanned<Every>>,
    #[serde(default)]
    group: Option<Spanned<Every>>,
    #[serde(default)]
    quiet_hours: Option<Spanned<String>>,
}

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub kinds: HashSet<EventKind>,
    pub channels: Vec<String>,
    /// The template it names; `None` means the event kind's default.
    pub template: Option<String>,
    pub enabled: bool,
    /// `throttle:` — at most one message per rule and record per this window.
    pub throttle: Option<std::time::Duration>,
    /// `group:` — this rule's messages within the window go out as one.
    pub group: Option<std::time::Duration>,
    /// `quiet_hours:` — messages created inside are held until the window ends.
    pub quiet_hours: Option<quiet::QuietHours>,
    /// `when:` — the CEL condition, if any.
    pub when: Option<condition::Condition>,
    /// Where `when:` is written (its message empty), for errors found later by `check`.
    pub when_at: Option<Located>,
    /// `before:` — reminder thresholds (seconds) for `referral.expiring`; `None` means the defaults.
    pub before: Option<Vec<u64>>,
    pub file: PathBuf,
}

impl Rule {
    pub fn matches(&self, event: &Event) -> bool {
        if !self.enabled || !self.kinds.contains(&event.kind) {
            return false;
        }
        if event.kind == EventKind::ReferralExpiring {
            let threshold = Expiring::from_data(&event.data).map(|d| d.threshold_secs);
            if !threshold.is_some_and(|t| self.thresholds().contains(&t)) {
                return false;
            }
        }
        match &self.when {
            None => true,
            Some(c) => c.eval(event).unwrap_or_else(|error| {
                tracing::warn!(rule = %self.name, event = %event.id, %error, "`when` cannot be evaluated on this event; not sending (guard fields with has())");
                false
            }),
        }
    }

    /// The reminder thresholds this rule asks for, in seconds.
    pub fn thresholds(&self) -> Vec<u64> {
        match &self.before {
            Some(b) => b.clone(),
            None => DEFAULT_THRESHOLDS.iter().map(|d| d.as_secs()).collect(),
        }
    }

    pub fn template_for(&self, kind: EventKind) -> String {
        self.template
            .clone()
            .unwrap_or_else(|| kind.default_template())
    }
}

/// All rules, in file order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Loads every `*.yaml`/`*.yml` file of `dir`, checked against the channels and templates.
    pub fn load_dir(
        dir: &Path,
        channels: &BTreeMap<String, ChannelConfig>,
        templates: &Templates,
    ) -> Result<RuleSet, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|error| ConfigError::Read {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let sources = files
            .into_iter()
            .map(|path| crate::config::read_file(&path).map(|text| (path, text)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_sources(sources, channels, templates)
    }

    /// Loads rules from (file, text) pairs.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (PathBuf, String)>,
        channels: &BTreeMap<String, ChannelConfig>,
        templates: &Templates,
    ) -> Result<RuleSet, ConfigError> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        let mut names: BTreeMap<String, (PathBuf, u64)> = BTreeMap::new();
        for (file, text) in sources {
            let defs: Vec<RuleDef> = match crate::config::parse_yaml(&file, &text) {
                Ok(defs) => defs,
                Err(ConfigError::At(located)) => {
                    errors.push(located);
                    continue;
                }
                Err(other) => return Err(other),
            };
            for def in defs {
                match compile(&file, def, channels, templates, &mut names) {
                    Ok(rule) => rules.push(rule),
                    Err(mut errs) => errors.append(&mut errs),
                }
            }
        }
        match errors.len() {
            0 => Ok(RuleSet { rules }),
            1 => Err(ConfigError::At(errors.remove(0))),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    /// Every reminder threshold of the enabled rules that listen to `referral.expiring`.
    pub fn expiry_thresholds(&self) -> Vec<std::time::Duration> {
        let mut all: Vec<u64> = self
            .rules
            .iter()
            .filter(|r| r.enabled && r.kinds.contains(&EventKind::ReferralExpiring))
            .flat_map(Rule::thresholds)
            .collect();
        all.sort_unstable();
        all.dedup();
        all.into_iter()
            .map(std::time::Duration::from_secs)
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The deliveries one event asks for: one per matching rule and channel, rendered now,
    /// less what a rule's `throttle` suppresses, held until the end of its `quiet_hours`.
    pub fn plan(
        &self,
        event: &Event,
        templates: &Templates,
        channels: &BTreeMap<String, ChannelConfig>,
        ctx: &mut PlanContext<'_>,
    ) -> Vec<Delivery> {
        let now = ctx.now;
        let mut out = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(event)) {
            if let Some(window) = rule.throttle {
                let key = format!("{}\u{0}{}", rule.name, event.entity_id);
                let last = ctx
                    .marks
                    .get(&key)
                    .copied()
                    .or_else(|| (ctx.last_sent)(&key));
                let window =
                    jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
                if last.is_some_and(|last| now.duration_since(last) < window) {
                    tracing::debug!(rule = %rule.name, entity = %event.entity_id, kind = %event.kind, "throttled");
                    continue;
                }
                ctx.marks.insert(key, now);
            }
            let mut due = rule
                .quiet_hours
                .and_then(|q| q.release(now, ctx.tz))
                .unwrap_or(now);
            if let Some(window) = rule.group {
                let window =
                    jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
                due = due.saturating_add(window).unwrap_or(due);
            }
            let template = rule.template_for(event.kind);
            for channel in &rule.channels {
                let Some(config) = channels.get(channel) else {
                    continue;
                };
                let message = templates.render_or_fallback(&template, config.format(), event);
                out.push(Delivery {
                    next_attempt_at: due,
                    group: rule.group.map(|_| format!("{}\u{0}{channel}", rule.name)),
                    amount: event
                        .kind
                        .as_str()
                        .starts_with("referral.")
                        .then(|| crate::model::Amount::of_referral(&event.record))
                        .flatten(),
                    ..Delivery::pending(
                        &event.id,
                        Some(event.kind),
                        &rule.name,
                        channel,
                        message,
                        now,
                    )
                });
            }
        }
        out
    }
}

/// What planning needs beyond the rules: the time, the time zone, and the throttle marks
/// (the store's, and those set while planning this sweep).
pub struct PlanContext<'a> {
    pub now: Timestamp,
    pub tz: &'a jiff::tz::TimeZone,
    /// When a rule last sent about a record (key: rule, NUL, entity id).
    pub last_sent: &'a dyn Fn(&str) -> Option<Timestamp>,
    /// Marks set while planning, to be committed with the deliveries.
    pub marks: BTreeMap<String, Timestamp>,
}

fn compile(
    file: &Path,
    def: RuleDef,
    channels: &BTreeMap<String, ChannelConfig>,
    templates: &Templates,
    names: &mut BTreeMap<String, (PathBuf, u64)>,
) -> Result<Rule, Vec<Located>> {
    let mut errors = Vec::new();
    let name = def.name.value.clone();
    if name.trim().is_empty() {
        errors.push(Located::at(
            file,
            &def.name,
            "a rule needs a non-empty name",
        ));
    } else if let Some((other, line)) = names.get(&name) {
        errors.push(Located::at(
            file,
            &def.name,
            format!("rule name {name:?} is already used in {}:{line}; names are unique across all rule files", other.display()),
        ));
    } else {
        names.insert(
            name.clone(),
            (file.to_path_buf(), def.name.referenced.line()),
        );
    }

    let patterns = match &def.on.value {
        OnSpec::One(p) => vec![p.clone()],
        OnSpec::Many(ps) => ps.clone(),
    };
    let mut kinds = HashSet::new();
    if patterns.is_empty() {
        errors.push(Located::at(
            file,
            &def.on,
            format!("rule {name:?}: `on` names no event kind"),
        ));
    }
    for pattern in &patterns {
        match globset::Glob::new(pattern) {
            Err(e) => errors.push(Located::at(
                file,
                &def.on,
                format!("rule {name:?}: bad pattern {pattern:?}: {e}"),
            )),
            Ok(glob) => {
                let matcher = glob.compile_matcher();
                let before = kinds.len();
                kinds.extend(
                    EventKind::ALL
                        .iter()
                        .copied()
                        .filter(|k| matcher.is_match(k.as_str())),
                );
                if kinds.len() == before
                    && !EventKind::ALL.iter().any(|k| matcher.is_match(k.as_str()))
                {
                    errors.push(Located::at(
                        file,
                        &def.on,
                        format!("rule {name:?}: {pattern:?} matches no event kind (e.g. referral.new, referral.*, system.*)"),
                    ));
                }
            }
        }
    }

    if def.channels.value.is_empty() {
        errors.push(Located::at(
            file,
            &def.channels,
            format!("rule {name:?}: `channels` is empty"),
        ));
    }
    let known: Vec<&str> = channels.keys().map(String::as_str).collect();
    for channel in &def.channels.value {
        if !channels.contains_key(&channel.value) {
            errors.push(Located::at(
                file,
                channel,
                format!(
                    "unknown channel {:?} (known: {})",
                    channel.value,
                    if known.is_empty() {
                        "none configured".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }

    // Every template this rule will render must exist (its text form; the channels' forms
    // derive from it where they have none of their own).
    match &def.template {
        Some(t) => {
            if !templates.has(&t.value) {
                errors.push(Located::at(
                    file,
                    t,
                    format!(
                        "rule {name:?}: no template {:?} in {} (expected {}.text.hbs)",
                        t.value,
                        templates.origin().display(),
                        t.value
                    ),
                ));
            }
        }
        None => {
            let mut missing: Vec<String> = kinds
                .iter()
                .map(|k| k.default_template())
                .filter(|t| !templates.has(t))
                .collect();
            missing.sort();
            for t in missing {
                errors.push(Located::at(
                    file,
                    &def.on,
                    format!("rule {name:?}: no template for {}: add {t}.text.hbs to {} or set `template`", t.replace('_', "."), templates.origin().display()),
                ));
            }
        }
    }
    let quiet_hours = match &def.quiet_hours {
        None => None,
        Some(q) => match q.value.parse::<quiet::QuietHours>() {
            Ok(q) => Some(q),
            Err(e) => {
                errors.push(Located::at(
                    file,
                    q,
                    format!("rule {name:?}: quiet_hours {e}"),
                ));
                None
            }
        },
    };
    let when_at = def.when.as_ref().map(|w| Located::at(file, w, ""));
    let when = match &def.when {
        None => None,
        Some(w) => match condition::Condition::compile(&w.value) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(Located::at(file, w, format!("rule {name:?}: `when` {e}")));
                None
            }
        },
    };
    if let Some(before) = &def.before {
        if !kinds.contains(&EventKind::ReferralExpiring) {
            errors.push(Located::at(file, before, format!("rule {name:?}: `before` only applies to referral.expiring, which `on` does not include")));
        }
        if before.value.is_empty() || before.value.iter().any(|d| d.as_duration().is_zero()) {
            errors.push(Located::at(file, before, format!("rule {name:?}: `before` lists reminder times before the deadline, like [7d, 3d, 1d, 6h]")));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Rule {
        name,
        kinds,
        channels: def.channels.value.into_iter().map(|c| c.value).collect(),
        template: def.template.map(|t| t.value),
        enabled: def.enabled.unwrap_or(true),
        when,
        when_at,
        throttle: def.throttle.map(|t| t.value.as_duration()),
        quiet_hours,
        group: def.group.map(|g| g.value.as_duration()),
        before: def
            .before
            .map(|b| b.value.iter().map(|d| d.as_duration().as_secs()).collect()),
        file: file.to_path_buf(),
    })
}
