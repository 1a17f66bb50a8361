//! Network safety: which addresses the service may ever connect to on a user's behalf.

pub mod address_policy;
pub mod safe_client;

pub use address_policy::{AddressPolicy, BlockedAddress};
