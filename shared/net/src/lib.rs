//! Fetching what users point us at, and nothing else: the HTTP client that holds every
//! connection and every redirect to the address policy (`safe_client`), and sitemap expansion
//! within its bounds (`sitemap`).

pub mod safe_client;
pub mod sitemap;

pub use safe_client::{describe, safe_client, safe_client_trusting};
