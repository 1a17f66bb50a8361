//! Helpers shared by the integration tests (real handlers against ministack), the end-to-end
//! tests (the deployed template driven over HTTP), the bench and the chaos suite.

pub mod api;
pub mod browser;
pub mod emulator;
pub mod fake_crux;
pub mod fake_psi;
mod google_fake;
pub mod live;
pub mod logs;
pub mod markdown;
pub mod origin;
pub mod processes;
pub mod screenshots;
pub mod site;
pub mod ssrf;
pub mod stack;
pub mod stats;
pub mod table_stream;
