//! What one tenant may take of a shared fleet: its limits (the deployment's defaults, each
//! overridable in the tenant's own item), what it uses now, and whether a new job fits.
//!
//! Submission limits (`max_active_jobs`, `max_urls_per_day`) refuse a job that does not fit
//! with `429` and the time to wait; a job that could never fit (more analyses than a whole
//! day allows) is invalid instead, since waiting would not help.

use serde::{Deserialize, Serialize};

use crate::settings::JobSettings;
use crate::time::Millis;

use super::named_enum;

named_enum!(
    /// A per-tenant limit, by the name the API, the tenant's item and the template use; and the
    /// tenant's weight in the shared PSI quota, set the same way.
    Limit {
        ActiveJobs => "max_active_jobs",
        UrlsPerDay => "max_urls_per_day",
        InFlight => "max_in_flight",
        QuotaWeight => "quota_weight",
    }
);

impl Limit {
    /// The values a deployment or a tenant may set.
    pub fn range(self) -> std::ops::RangeInclusive<u64> {
        match self {
            Limit::ActiveJobs | Limit::InFlight => 1..=10_000,
            Limit::UrlsPerDay => 1..=1_000_000_000,
            Limit::QuotaWeight => {
                u64::from(*crate::quota::fair::WEIGHT.start())..=u64::from(*crate::quota::fair::WEIGHT.end())
            }
        }
    }

    /// The deployment setting (environment variable) that holds its default.
    pub fn env_name(self) -> &'static str {
        match self {
            Limit::ActiveJobs => "TENANT_MAX_ACTIVE_JOBS",
            Limit::UrlsPerDay => "TENANT_MAX_URLS_PER_DAY",
            Limit::InFlight => "TENANT_MAX_IN_FLIGHT",
            Limit::QuotaWeight => "TENANT_QUOTA_WEIGHT",
        }
    }
}

/// How long a tenant at `max_active_jobs` is asked to wait: jobs finish at any moment, so this
/// is a polite polling interval rather than a promise.
pub const ACTIVE_JOBS_RETRY_SECONDS: u32 = 30;
const DAY_MS: Millis = 86_400_000;

/// A tenant's limits as they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Jobs not yet finished, at once.
    pub max_active_jobs: u32,
    /// URL analyses submitted per UTC day: each URL counts once per run and form factor.
    pub max_urls_per_day: u64,
    /// URLs of all the tenant's jobs being analysed at the same moment, fleet-wide.
    pub max_in_flight: u32,
    /// The tenant's share of the PSI quota against other tenants waiting at the same time
    /// (weight 2 gets twice weight 1's); alone it may use it all.
    pub quota_weight: u32,
}

impl Limits {
    /// The template's defaults.
    pub const DEFAULT: Limits =
        Limits { max_active_jobs: 20, max_urls_per_day: 250_000, max_in_flight: 100, quota_weight: 1 };
    /// No limit at all: what a store applies when the caller names none (tests, tools).
    pub const UNLIMITED: Limits =
        Limits { max_active_jobs: u32::MAX, max_urls_per_day: u64::MAX, max_in_flight: u32::MAX, quota_weight: 1 };

    /// These limits with the tenant's own values in place of the defaults it overrides.
    pub fn with(self, overrides: &LimitOverrides) -> Limits {
        Limits {
            max_active_jobs: overrides.max_active_jobs.unwrap_or(self.max_active_jobs),
            max_urls_per_day: overrides.max_urls_per_day.unwrap_or(self.max_urls_per_day),
            max_in_flight: overrides.max_in_flight.unwrap_or(self.max_in_flight),
            quota_weight: overrides.quota_weight.unwrap_or(self.quota_weight),
        }
    }

    pub fn value(&self, limit: Limit) -> u64 {
        match limit {
            Limit::ActiveJobs => u64::from(self.max_active_jobs),
            Limit::UrlsPerDay => self.max_urls_per_day,
            Limit::InFlight => u64::from(self.max_in_flight),
            Limit::QuotaWeight => u64::from(self.quota_weight),
        }
    }
}

/// The limits a tenant's item sets for it; the rest are the deployment's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_urls_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_weight: Option<u32>,
}

impl LimitOverrides {
    /// The limits this tenant has its own value for.
    pub fn names(&self) -> Vec<Limit> {
        let set = [
            (Limit::ActiveJobs, self.max_active_jobs.is_some()),
            (Limit::UrlsPerDay, self.max_urls_per_day.is_some()),
            (Limit::InFlight, self.max_in_flight.is_some()),
            (Limit::QuotaWeight, self.quota_weight.is_some()),
        ];
        set.into_iter().filter_map(|(limit, set)| set.then_some(limit)).collect()
    }
}

/// What a tenant uses now of the limits a submission is held to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Jobs submitted and not yet finished.
    pub active_jobs: u32,
    /// URL analyses submitted since midnight UTC.
    pub urls_today: u64,
}

/// A tenant's overrides and usage, as one read of its items finds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantUsage {
    pub overrides: LimitOverrides,
    pub usage: Usage,
}

/// The URL analyses a job asks for: every URL once per run and per form factor.
pub fn analyses(settings: &JobSettings, urls: u64) -> u64 {
    urls.saturating_mul(u64::from(settings.runs.max(1))).saturating_mul(settings.strategy.form_factors().len() as u64)
}

/// The UTC day `now` falls in, as it names the tenant's daily count (`2026-12-04`).
pub fn usage_day(now: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// When the day `now` falls in ends: midnight UTC.
pub fn day_ends(now: Millis) -> Millis {
    (now.div_euclid(DAY_MS) + 1) * DAY_MS
}

/// A limit a submission ran into, with the numbers that say why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverLimit {
    pub limit: Limit,
    /// The limit's value for this tenant.
    pub allowed: u64,
    /// What the tenant uses of it now.
    pub used: u64,
    /// What the submission asked for (a job; its URL analyses).
    pub requested: u64,
    /// When asking again can succeed; `None` when it never can with this submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

impl OverLimit {
    /// Whether waiting helps: `false` for a job larger than a whole day allows.
    pub fn is_temporary(&self) -> bool {
        self.retry_after_seconds.is_some()
    }

    /// The refusal in words a user can act on.
    pub fn message(&self) -> String {
        let (allowed, used, requested) = (self.allowed, self.used, self.requested);
        match (self.limit, self.retry_after_seconds) {
            (Limit::ActiveJobs, _) => format!(
                "your tenant already has {used} unfinished jobs and may have at most {allowed} at once; \
                 submit this one when one of them finishes (or cancel one)"
            ),
            (Limit::UrlsPerDay, Some(_)) => format!(
                "this job needs {requested} URL analyses (URLs x runs x form factors) and your tenant has \
                 {} of its {allowed} for today left; the count starts again at midnight UTC",
                allowed.saturating_sub(used)
            ),
            (Limit::UrlsPerDay, None) => format!(
                "this job needs {requested} URL analyses (URLs x runs x form factors), more than your tenant \
                 may submit in a whole day ({allowed}); split it into smaller jobs"
            ),
            // Not submission limits: nothing is refused by them (URLs wait, or share).
            (Limit::InFlight | Limit::QuotaWeight, _) => format!("your tenant's {} is {allowed}", self.limit),
        }
    }
}

/// Whether a job asking for `analyses` URL analyses fits the tenant's limits at `now`.
pub fn admit(limits: &Limits, usage: &Usage, analyses: u64, now: Millis) -> Result<(), OverLimit> {
    let day_left = u32::try_from((day_ends(now) - now + 999) / 1000).unwrap_or(u32::MAX);
    let over = |limit: Limit, used: u64, requested: u64, retry_after_seconds: Option<u32>| OverLimit {
        limit,
        allowed: limits.value(limit),
        used,
        requested,
        retry_after_seconds,
    };
    if analyses > limits.max_urls_per_day {
        return Err(over(Limit::UrlsPerDay, usage.urls_today, analyses, None));
    }
    if usage.active_jobs >= limits.max_active_jobs {
        return Err(over(Limit::ActiveJobs, u64::from(usage.active_jobs), 1, Some(ACTIVE_JOBS_RETRY_SECONDS)));
    }
    if usage.urls_today.saturating_add(analyses) > limits.max_urls_per_day {
        return Err(over(Limit::UrlsPerDay, usage.urls_today, analyses, Some(day_left.max(1))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Strategy;

    const NOON: Millis = 1_796_385_600_000; // 2026-12-04T12:00:00Z
    const LIMITS: Limits = Limits { max_active_jobs: 2, max_urls_per_day: 100, max_in_flight: 10, quota_weight: 1 };

    #[test]
    fn a_job_counts_every_run_and_form_factor() {
        let both = JobSettings { strategy: Strategy::Both, runs: 3, ..Default::default() };
        assert_eq!(analyses(&both, 10), 60);
        assert_eq!(analyses(&JobSettings::default(), 10), 10);
    }

    #[test]
    fn the_day_is_utc() {
        assert_eq!(usage_day(NOON), "2026-12-04");
        assert_eq!(day_ends(NOON), NOON + 12 * 3_600_000);
        assert_eq!(usage_day(day_ends(NOON)), "2026-12-05");
        assert_eq!(day_ends(day_ends(NOON) - 1), day_ends(NOON));
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let overrides = LimitOverrides { max_active_jobs: Some(1), ..Default::default() };
        assert_eq!(Limits::DEFAULT.with(&overrides), Limits { max_active_jobs: 1, ..Limits::DEFAULT });
        assert_eq!(overrides.names(), [Limit::ActiveJobs]);
        assert_eq!(Limits::DEFAULT.with(&LimitOverrides::default()), Limits::DEFAULT);
    }

    #[test]
    fn fits_up_to_each_limit_and_not_beyond() {
        let usage = Usage { active_jobs: 1, urls_today: 40 };
        assert_eq!(admit(&LIMITS, &usage, 60, NOON), Ok(()));
        let over = admit(&LIMITS, &usage, 61, NOON).unwrap_err();
        assert_eq!((over.limit, over.allowed, over.used, over.requested), (Limit::UrlsPerDay, 100, 40, 61));
        assert_eq!(over.retry_after_seconds, Some(12 * 3600), "until midnight UTC");
        assert!(over.message().contains("60 of its 100 for today left"), "{}", over.message());

        let full = Usage { active_jobs: 2, urls_today: 0 };
        let over = admit(&LIMITS, &full, 1, NOON).unwrap_err();
        assert_eq!((over.limit, over.used, over.retry_after_seconds), (Limit::ActiveJobs, 2, Some(30)));
        assert!(over.message().contains("at most 2 at once"), "{}", over.message());
    }

    #[test]
    fn a_job_larger_than_a_day_is_refused_for_good() {
        let over = admit(&LIMITS, &Usage::default(), 101, NOON).unwrap_err();
        assert!(!over.is_temporary());
        assert!(over.message().contains("split it into smaller jobs"), "{}", over.message());
        // Even while the tenant is also at its job limit: waiting would not help.
        let busy = Usage { active_jobs: 2, urls_today: 0 };
        assert_eq!(admit(&LIMITS, &busy, 101, NOON).unwrap_err().limit, Limit::UrlsPerDay);
    }

    #[test]
    fn the_limit_names_are_the_fields_of_limits() {
        let json = serde_json::to_value(Limits::DEFAULT).unwrap();
        for limit in Limit::ALL {
            assert_eq!(json[limit.as_str()].as_u64(), Some(Limits::DEFAULT.value(*limit)), "{limit}");
        }
    }
}
