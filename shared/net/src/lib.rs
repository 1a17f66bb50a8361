//! Fetching what users point us at, and nothing else: the HTTP client that holds every
//! connection and every redirect to the address policy (`safe_client`), and sitemap expansion
//! within its bounds (`sitemap`), and the TLS configuration of hand-made connections (`tls`).

pub mod safe_client;
pub mod sitemap;
pub mod tls;

pub use safe_client::{describe, safe_client, safe_client_trusting};
