use std::sync::Arc;

use aws::config::QueueUrls;
use aws::exports::ExportFiles;
use aws::queue::TaskQueue;
use domain::AddressPolicy;
use store::{History, Jobs, KeyStore, Monitors, Reports, Tenancy, WaitLog};

/// Everything a request handler needs, built once per container.
pub struct AppState<S, Q, E> {
    pub store: S,
    pub queue: Q,
    /// Where finished jobs' whole-job exports are, to hand out links to them.
    pub exports: E,
    pub settings: ApiSettings,
}

/// The API's share of the deployment configuration.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub queues: QueueUrls,
    pub dead_letters: Option<QueueUrls>,
    pub policy: AddressPolicy,
    /// The longest analysis a URL can get: the analyzer function's own timeout less a margin
    /// for writing the result.
    pub max_url_timeout_seconds: u32,
    /// The policy-enforcing client for fetches made while handling a request (sitemaps).
    pub http: reqwest::Client,
    /// Whether the deployment has a PageSpeed Insights key (`auto` then means `psi`).
    pub psi_available: bool,
    /// Whether it has a Chrome UX Report key (field data).
    pub crux_available: bool,
    /// What each tenant may use unless its own item says otherwise.
    pub tenant_limits: domain::tenancy::Limits,
    /// The WebSocket API's URL for live progress, told to the dashboard; `None`: it polls.
    pub ws_url: Option<String>,
}

impl ApiSettings {
    /// The engines this deployment runs besides `http`.
    pub fn offered(&self) -> domain::Offered {
        domain::Offered { psi: self.psi_available, browser: self.queues.browser.is_some(), crux: self.crux_available }
    }

    /// What every job submitted here is given.
    pub fn deployment(&self) -> submit::Deployment {
        submit::Deployment {
            queues: self.queues.clone(),
            tenant_limits: self.tenant_limits,
            max_url_timeout_seconds: self.max_url_timeout_seconds,
        }
    }
}

pub type SharedState<S, Q, E> = Arc<AppState<S, Q, E>>;

/// What the handlers need of a store: jobs, finished jobs' reports, API keys, each tenant's
/// limits and usage, how many URLs wait, and each URL's history.
pub trait Store: Jobs + Reports + KeyStore + Tenancy + WaitLog + History + Monitors + 'static {}
impl<T: Jobs + Reports + KeyStore + Tenancy + WaitLog + History + Monitors + 'static> Store for T {}

/// What the handlers need of a queue.
pub trait Queue: TaskQueue + 'static {}
impl<T: TaskQueue + 'static> Queue for T {}

/// What the handlers need of the exports bucket.
pub trait Files: ExportFiles + 'static {}
impl<T: ExportFiles + 'static> Files for T {}
