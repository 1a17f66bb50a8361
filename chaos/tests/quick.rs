//! The quick parts of the reliability suite, in `make test`: each scenario at a small scale
//! against the deployed chaos stack (`make chaos-stack`). The slow ones (crashes, outage,
//! load, fuzzing) run in `make chaos` only; the outage restarts the emulator under every
//! other test.

use chaos::report::Section;
use chaos::rig::Rig;
use chaos::{Scale, scenarios};

async fn rig() -> Rig {
    Rig::new().await.unwrap_or_else(|e| panic!("{e}"))
}

fn assert_held(section: Section) {
    assert!(section.held(), "{}", section.markdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_change_nothing() {
    assert_held(scenarios::duplicates::run(&rig().await, &Scale::QUICK).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_dead_lettered_and_the_redrive_reprocesses_after_a_fix() {
    assert_held(scenarios::poison::run(&rig().await, &Scale::QUICK).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_callbacks_hold_up_no_other_job() {
    assert_held(scenarios::callbacks::run(&rig().await).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_sitemaps_and_pages_get_clear_answers() {
    assert_held(scenarios::hostile::run(&rig().await).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_isolation_and_keys_at_rest_hold_on_the_deployed_stack_and_logs_keep_no_secret() {
    let rig = rig().await;
    assert_held(scenarios::security::run(&rig).await);
    assert_held(scenarios::security::logs(&rig).await);
}
