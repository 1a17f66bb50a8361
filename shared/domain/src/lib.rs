//! The service's vocabulary and its rules: jobs, the URL tasks inside them, their statuses and
//! the transitions allowed between them, the settings a job takes with their bounds, the
//! cleaned URL every task is built from and the address policy it is held to, and the shared
//! quota's arithmetic. Pure: no AWS, HTTP or async runtime. The adapters beside this crate
//! (`store`, `engine`, `net`, `aws`) do the I/O.

pub mod address_policy;
pub mod analytics;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod callback;
pub mod clean_url;
pub mod compare;
pub mod delivery;
pub mod error;
pub mod field;
pub mod history;
pub mod job;
pub mod labels;
pub mod lifecycle;
pub mod live;
pub mod message;
pub mod monitor;
pub mod paths;
pub mod places;
pub mod politeness;
pub mod quota;
pub mod report;
pub mod retry;
pub mod schedule;
pub mod screenshots;
pub mod settings;
pub mod tally;
pub mod task;
pub mod tenancy;
pub mod time;
pub mod timeouts;
pub mod view;
pub mod waits;
pub mod window;

pub use address_policy::{AddressPolicy, BlockedAddress};
pub use error::Error;

pub use cache::{CacheKey, CachedFrom};
pub use clean_url::{CleanUrl, CleanedBatch, Rejected, UrlRejection, clean_batch};
pub use job::{Counters, Job, JobId, JobStatus, Tenant};
pub use labels::{JobUrl, LabelFilter, Tags};
pub use lifecycle::{Cancel, Delivery, Outcome, Recorded};
pub use message::TaskMessage;
pub use settings::{Category, EngineChoice, EngineKind, JobSettings, Offered, Priority, Strategy};
pub use task::{Analysis, ErrorKind, TaskFilter, UrlStatus, UrlTask};
pub use view::JobView;

/// Serde glue for enums that are stored and shown by the same snake_case names.
///
/// `$text` is a `tt`, not a `literal`: a `literal` fragment reaches derive macros wrapped in an
/// invisible group, which serde reads through but utoipa does not, so the OpenAPI document
/// named the variants (`Pending`) instead of the values on the wire (`pending`).
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("{:?} is not one of {}", other, [$($text),+].join(", "))),
                }
            }
        }
    };
}
pub(crate) use named_enum;
