//! Helpers shared by the integration tests (real handlers against ministack) and the
//! end-to-end tests (the deployed template driven over HTTP).

pub mod aws;
pub mod fake_psi;
pub mod origin;
pub mod site;
pub mod stack;
