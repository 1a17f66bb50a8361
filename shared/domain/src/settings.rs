//! What a client chooses for a job (`JobSettings`), each choice's allowed values, and the
//! bounds and defaults every layer states: validation enforces them, the OpenAPI document and
//! the CLI's help show them.

use serde::{Deserialize, Serialize};

use super::named_enum;
pub use crate::field::FieldAsk;

named_enum!(
    /// `urgent` and `high` share the high queue.
    Priority { Low => "low", Normal => "normal", High => "high", Urgent => "urgent" }
);

named_enum!(Strategy { Mobile => "mobile", Desktop => "desktop", Both => "both" });

named_enum!(
    /// The Lighthouse categories PageSpeed Insights can score; `performance` is the default.
    Category {
        Performance => "performance",
        Accessibility => "accessibility",
        BestPractices => "best-practices",
        Seo => "seo",
    }
);

impl Strategy {
    /// The form factors analysed: both for `both`, otherwise the one asked for.
    pub fn form_factors(self) -> &'static [Strategy] {
        match self {
            Strategy::Mobile => &[Strategy::Mobile],
            Strategy::Desktop => &[Strategy::Desktop],
            Strategy::Both => &[Strategy::Mobile, Strategy::Desktop],
        }
    }
}

named_enum!(
    /// The engine a client asks for; `auto` resolves to `psi` when a key is configured.
    EngineChoice { Auto => "auto", Psi => "psi", Http => "http", Browser => "browser", None => "none" }
);

named_enum!(
    /// The engine a job runs on: its `EngineChoice`, resolved once at submission. `none`
    /// loads no page: the job asks for field data only ([`crate::field`]).
    EngineKind { Psi => "psi", Http => "http", Browser => "browser", FieldOnly => "none" }
);

/// The engines a deployment offers besides `http`, which it always has: `psi` with a
/// PageSpeed Insights key, `browser` with the browser analyzer and its queue; and field data
/// (`crux`) with a Chrome UX Report key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offered {
    pub psi: bool,
    pub browser: bool,
    pub crux: bool,
}

impl EngineChoice {
    /// The engine this choice runs on in a deployment offering `offered`, or why it cannot run.
    pub fn resolve(self, offered: Offered) -> Result<EngineKind, &'static str> {
        match self {
            EngineChoice::Psi if !offered.psi => {
                Err("psi needs a PageSpeed Insights key, and this deployment has none: use http, browser or auto")
            }
            EngineChoice::Browser if !offered.browser => {
                Err("this deployment has no browser analyzer: use http, or psi with a key")
            }
            EngineChoice::Psi => Ok(EngineKind::Psi),
            EngineChoice::Browser => Ok(EngineKind::Browser),
            // Whether the deployment has field data is `field_data`'s to say (FieldAsk::resolve).
            EngineChoice::None => Ok(EngineKind::FieldOnly),
            EngineChoice::Auto if offered.psi => Ok(EngineKind::Psi),
            EngineChoice::Auto | EngineChoice::Http => Ok(EngineKind::Http),
        }
    }
}

impl EngineKind {
    /// Whether it gives Lighthouse's performance score (`score`); the http engine gives a
    /// delivery score instead.
    pub fn scores_performance(self) -> bool {
        matches!(self, EngineKind::Psi | EngineKind::Browser)
    }

    /// Whether it loads the page (every engine but `none`).
    pub fn is_lab(self) -> bool {
        self != EngineKind::FieldOnly
    }
}

/// A whole-number setting's range and default: what `POST /start` enforces, and what the
/// OpenAPI document and the CLI's help state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub field: &'static str,
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

impl Bounds {
    pub fn contains(&self, n: u64) -> bool {
        (u64::from(self.min)..=u64::from(self.max)).contains(&n)
    }

    /// How a problem with the field is reported.
    pub fn expected(&self) -> String {
        format!("must be a whole number from {} to {}", self.min, self.max)
    }

    /// `1 to 20, default 5`: for help texts.
    pub fn describe(&self) -> String {
        format!("{} to {}, default {}", self.min, self.max, self.default)
    }
}

/// URLs of one job analysed at the same moment, fleet-wide (the sliding window).
pub const BATCH_SIZE: Bounds = Bounds { field: "batch_size", min: 1, max: 20, default: 5 };
/// Seconds one URL may take; the deployment may give less (`timeouts::effective`).
pub const TIMEOUT_SECONDS: Bounds = Bounds { field: "timeout_seconds", min: 60, max: 1800, default: 300 };
/// Retries of a URL after a retryable failure.
pub const MAX_RETRIES: Bounds = Bounds { field: "max_retries", min: 0, max: 5, default: 3 };
/// Analyses per URL and form factor.
pub const RUNS: Bounds = Bounds { field: "runs", min: 1, max: 5, default: 1 };
/// The age of a result that may be reused (0: never).
pub const CACHE_TTL_SECONDS: Bounds = Bounds { field: "cache_ttl_seconds", min: 0, max: 86_400, default: 0 };
/// Every whole-number setting.
pub const NUMBERS: [Bounds; 5] = [BATCH_SIZE, TIMEOUT_SECONDS, MAX_RETRIES, RUNS, CACHE_TTL_SECONDS];
/// URLs in one job, listed or from a sitemap.
pub const MAX_URLS: usize = 10_000;
/// Characters in a job's name.
pub const MAX_NAME_CHARS: usize = 200;

/// What the client chose for a job, already validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSettings {
    pub priority: Priority,
    pub strategy: Strategy,
    /// The engine the job runs on (`auto` resolved when it was submitted).
    pub engine: EngineKind,
    pub batch_size: u32,
    pub timeout_seconds: u32,
    pub max_retries: u32,
    /// Where the job's completion is POSTed, signed with the tenant's callback secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Analyses per URL and form factor; the median run is kept and the spread reported.
    #[serde(default = "one")]
    pub runs: u32,
    /// A result of the tenant's at most this old, for the same URL, engine and strategy, is
    /// reused instead of analysing again (0: never).
    #[serde(default)]
    pub cache_ttl_seconds: u32,
    /// What PageSpeed Insights scores besides performance.
    #[serde(default = "performance_only")]
    pub categories: Vec<Category>,
    /// The most URLs of one host analysed at once while this job's URLs run, if fewer than
    /// the deployment's ([`crate::politeness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_concurrency: Option<u32>,
    /// Real users' experience from the Chrome UX Report beside (or, with engine `none`,
    /// instead of) the lab analysis; `field_history` adds its weekly series.
    #[serde(default, flatten)]
    pub field: FieldAsk,
}

pub fn one() -> u32 {
    RUNS.default
}

pub fn performance_only() -> Vec<Category> {
    vec![Category::Performance]
}

/// The defaults of SPEC §2 for every field a client may leave out (`auto` resolved as on a
/// deployment without a PageSpeed Insights key).
impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            priority: Priority::Normal,
            strategy: Strategy::Mobile,
            engine: EngineKind::Http,
            batch_size: BATCH_SIZE.default,
            timeout_seconds: TIMEOUT_SECONDS.default,
            max_retries: MAX_RETRIES.default,
            callback_url: None,
            runs: RUNS.default,
            cache_ttl_seconds: CACHE_TTL_SECONDS.default,
            categories: performance_only(),
            host_concurrency: None,
            field: FieldAsk::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_psi_where_there_is_a_key() {
        let (all, none) = (Offered { psi: true, browser: true, crux: true }, Offered::default());
        assert_eq!(EngineChoice::Auto.resolve(all), Ok(EngineKind::Psi));
        assert_eq!(EngineChoice::Auto.resolve(none), Ok(EngineKind::Http));
        assert_eq!(EngineChoice::Http.resolve(all), Ok(EngineKind::Http));
        assert_eq!(EngineChoice::Psi.resolve(all), Ok(EngineKind::Psi));
        assert_eq!(EngineChoice::Browser.resolve(all), Ok(EngineKind::Browser));
        assert_eq!(EngineChoice::None.resolve(none), Ok(EngineKind::FieldOnly), "field_data says if it can run");
        assert!(EngineChoice::Psi.resolve(none).unwrap_err().contains("PageSpeed Insights key"));
        assert!(EngineChoice::Browser.resolve(none).unwrap_err().contains("no browser analyzer"));
    }

    #[test]
    fn bounds_are_inclusive_and_say_so() {
        assert!(BATCH_SIZE.contains(1) && BATCH_SIZE.contains(20) && !BATCH_SIZE.contains(21));
        assert!(!BATCH_SIZE.contains(0) && MAX_RETRIES.contains(0));
        assert_eq!(TIMEOUT_SECONDS.expected(), "must be a whole number from 60 to 1800");
        assert_eq!(BATCH_SIZE.describe(), "1 to 20, default 5");
        for bounds in NUMBERS {
            assert!(bounds.contains(u64::from(bounds.default)), "{}", bounds.field);
        }
    }
}
