//! What a client chooses for a job (`JobSettings`), each choice's allowed values, and the
//! bounds and defaults every layer states: validation enforces them, the OpenAPI document and
//! the CLI's help show them.

use serde::{Deserialize, Serialize};

use super::named_enum;

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
    /// The engine a job asked for; `auto` resolves to `psi` when a key is configured.
    EngineChoice { Auto => "auto", Psi => "psi", Http => "http" }
);

/// What the client chose for a job, already validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSettings {
    pub priority: Priority,
    pub strategy: Strategy,
    pub engine: EngineChoice,
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
}

pub fn one() -> u32 {
    1
}

pub fn performance_only() -> Vec<Category> {
    vec![Category::Performance]
}

/// The defaults of SPEC §2 for every field a client may leave out.
impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            priority: Priority::Normal,
            strategy: Strategy::Mobile,
            engine: EngineChoice::Auto,
            batch_size: 5,
            timeout_seconds: 300,
            max_retries: 3,
            callback_url: None,
            runs: 1,
            cache_ttl_seconds: 0,
            categories: performance_only(),
        }
    }
}
