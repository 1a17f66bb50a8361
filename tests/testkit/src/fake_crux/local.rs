//! The fake the local stack's analyzers call: `make up` deploys them with `CRUX_ENDPOINT` at a
//! fixed address on 127.0.0.1 and a key in SSM, and writes both to `.local/stack.env`. A test or
//! bench that drives field data through the deployed stack starts this fake there, once per
//! process, on a thread of its own so that it outlives each test's runtime.

use std::sync::OnceLock;
use std::time::Duration;

use super::{CruxQuota, FakeCrux, FakeCruxConfig};
use crate::stack::DeployedStack;

/// How the local stack's Chrome UX Report behaves: Google's quota (150 a minute), answers in
/// 20 to 60 ms.
pub fn local_config(port: u16, key: &str) -> FakeCruxConfig {
    FakeCruxConfig {
        api_key: Some(key.to_owned()),
        quota: Some(CruxQuota::default()),
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(40),
        port,
        ..FakeCruxConfig::new()
    }
}

/// The port of an endpoint such as `http://127.0.0.1:4597/v1`.
fn port_of(endpoint: &str) -> Result<u16, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("CRUX_ENDPOINT {endpoint:?}: {e}"))?;
    match (url.host_str(), url.port()) {
        (Some("127.0.0.1"), Some(port)) => Ok(port),
        _ => Err(format!("CRUX_ENDPOINT {endpoint:?} is not a port on 127.0.0.1: the local stack's fake lives there")),
    }
}

/// The fake at the stack's `CRUX_ENDPOINT` with its `CRUX_KEY`, started on first use. Its
/// counters are the whole process's: tests tell their requests apart by URL.
pub fn for_local_stack(stack: &DeployedStack) -> Result<&'static FakeCrux, String> {
    static FAKE: OnceLock<Result<FakeCrux, String>> = OnceLock::new();
    let started = FAKE.get_or_init(|| {
        let port = port_of(stack.value("CRUX_ENDPOINT")?)?;
        let config = local_config(port, stack.value("CRUX_KEY")?);
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fake-crux".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = sender.send(Err(format!("a runtime for the fake CrUX: {err}")));
                        return;
                    }
                };
                let fake = runtime.block_on(async { FakeCrux::try_start(config) });
                let _ = sender.send(fake.map_err(|e| format!("the fake CrUX on 127.0.0.1:{port}: {e}")));
                runtime.block_on(std::future::pending::<()>());
            })
            .map_err(|e| format!("a thread for the fake CrUX: {e}"))?;
        receiver.recv().map_err(|e| format!("the fake CrUX's thread: {e}"))?
    });
    started.as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_local_port_is_the_local_fakes() {
        assert_eq!(port_of("http://127.0.0.1:4597/v1"), Ok(4597));
        assert!(port_of("https://chromeuxreport.googleapis.com/v1").unwrap_err().contains("127.0.0.1"));
    }
}
