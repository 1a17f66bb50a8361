//! The address policy at the engine, target by target: every hostile URL below is refused as
//! "blocked by policy", before any connection to it. The redirecting site runs on 127.0.0.2,
//! the one address the policy exempts, so the redirects' targets are judged exactly as a
//! deployed analyzer would judge them.

use std::time::Duration;

use domain::AddressPolicy;
use domain::{ErrorKind, Strategy};
use engine::{Engine, HttpEngine};
use testkit::site::Site;
use testkit::ssrf::{DIRECT, REDIRECTS};

#[tokio::test]
async fn every_hostile_target_is_blocked_by_policy() {
    let site = Site::start_on("127.0.0.2".parse().unwrap()).await;
    let engine = HttpEngine::new(AddressPolicy::STRICT.exempting(site.addr.ip())).unwrap();
    let mut targets: Vec<String> = DIRECT.iter().map(|t| t.to_string()).collect();
    for to in REDIRECTS {
        let query: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
        targets.push(site.url(&format!("/redirect?to={query}")));
    }
    assert!(targets.len() >= 25);
    let mut wrong = Vec::new();
    for target in &targets {
        match engine.analyze(target, Strategy::Mobile, Duration::from_secs(10)).await {
            Err(err) if err.kind == ErrorKind::Blocked && err.reason.contains("blocked by policy") => {
                eprintln!("{target}: {}", err.reason)
            }
            other => wrong.push(format!("{target}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "not blocked:\n{}", wrong.join("\n"));
    assert_eq!(site.hits(), REDIRECTS.len(), "only the site itself was reached, never a redirect's target");
    // The exemption is for the site alone: the same page through the strict policy is refused.
    let strict = HttpEngine::new(AddressPolicy::STRICT).unwrap();
    let refused = strict.analyze(&site.url("/page/1"), Strategy::Mobile, Duration::from_secs(10)).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Blocked);
    // And an allowed page through the exempting policy is measured.
    assert!(engine.analyze(&site.url("/page/1"), Strategy::Mobile, Duration::from_secs(10)).await.is_ok());
}
