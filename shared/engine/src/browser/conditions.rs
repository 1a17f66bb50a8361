//! The device and network a page is loaded on, per form factor: Lighthouse 12.8's presets
//! (`core/config/constants.js`: the moto g power (2022) screen and user agent on slow 4G with
//! a 4× slower CPU for mobile; a 1350×940 desktop on dense 4G), applied by emulation in the
//! browser (DevTools network and CPU throttling), not simulated.
//!
//! Why emulate: Lighthouse's default (`simulate`) loads the page unthrottled and then replays
//! its request graph through Lantern, a model of connections and the main thread; that model
//! is most of Lighthouse itself. Emulation measures the page under the conditions directly, at
//! the cost of taking as long as a slow device would. Lighthouse's own `devtools` mode does
//! the same and scales the round trip up (×3.75) and the throughput down (×0.9), because the
//! browser applies them per request rather than per packet; the same factors are used here,
//! for desktop too (where Lighthouse's devtools preset applies no network throttling at all,
//! which would make every local page look instant next to its simulated score).

use domain::Strategy;
use serde_json::{Value, json};

/// Per-request round trip added by DevTools network emulation, relative to a real one.
const RTT_FACTOR: f64 = 3.75;
/// Throughput DevTools emulation allows, relative to the link's.
const THROUGHPUT_FACTOR: f64 = 0.9;

/// One form factor's device and network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conditions {
    pub mobile: bool,
    pub width: u32,
    pub height: u32,
    pub device_scale_factor: f64,
    pub user_agent: &'static str,
    /// The link's round trip and throughput, before the DevTools factors.
    pub rtt_ms: f64,
    pub throughput_kbps: f64,
    pub upload_kbps: f64,
    pub cpu_slowdown: f64,
}

/// The Chrome version in the user agents is Lighthouse's: the page sees the device
/// Lighthouse reports, whatever Chromium runs it.
pub const MOBILE: Conditions = Conditions {
    mobile: true,
    width: 412,
    height: 823,
    device_scale_factor: 1.75,
    user_agent: "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/136.0.0.0 Mobile Safari/537.36",
    rtt_ms: 150.0,
    throughput_kbps: 1.6 * 1024.0,
    upload_kbps: 750.0,
    cpu_slowdown: 4.0,
};

pub const DESKTOP: Conditions = Conditions {
    mobile: false,
    width: 1350,
    height: 940,
    device_scale_factor: 1.0,
    user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/136.0.0.0 Safari/537.36",
    rtt_ms: 40.0,
    throughput_kbps: 10.0 * 1024.0,
    upload_kbps: 10.0 * 1024.0,
    cpu_slowdown: 1.0,
};

impl Conditions {
    pub fn of(strategy: Strategy) -> Conditions {
        if strategy == Strategy::Desktop { DESKTOP } else { MOBILE }
    }

    /// `Emulation.setDeviceMetricsOverride`'s parameters.
    pub fn device_metrics(&self) -> Value {
        json!({
            "width": self.width,
            "height": self.height,
            "deviceScaleFactor": self.device_scale_factor,
            "mobile": self.mobile,
            "screenWidth": self.width,
            "screenHeight": self.height,
        })
    }

    /// `Network.emulateNetworkConditions`' parameters: latency in ms, throughput in bytes
    /// per second.
    pub fn network(&self) -> Value {
        let bytes_per_second = |kbps: f64| kbps * 1024.0 / 8.0 * THROUGHPUT_FACTOR;
        json!({
            "offline": false,
            "latency": self.rtt_ms * RTT_FACTOR,
            "downloadThroughput": bytes_per_second(self.throughput_kbps),
            "uploadThroughput": bytes_per_second(self.upload_kbps),
        })
    }

    /// What the result says it was measured under.
    pub fn describe(&self) -> Value {
        json!({
            "method": "emulated",
            "viewport": format!("{}x{}@{}", self.width, self.height, self.device_scale_factor),
            "rtt_ms": self.rtt_ms,
            "throughput_kbps": self.throughput_kbps,
            "cpu_slowdown": self.cpu_slowdown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_is_slow_4g_on_a_4x_slower_cpu_scaled_as_devtools_throttling_is() {
        let network = Conditions::of(Strategy::Mobile).network();
        assert_eq!(network["latency"], 562.5);
        assert_eq!(network["downloadThroughput"], 1.6 * 1024.0 * 1024.0 / 8.0 * 0.9);
        assert_eq!(Conditions::of(Strategy::Mobile).cpu_slowdown, 4.0);
        assert_eq!(Conditions::of(Strategy::Desktop).network()["latency"], 150.0);
        assert_eq!(Conditions::of(Strategy::Desktop).device_metrics()["width"], 1350);
        assert!(MOBILE.user_agent.contains("Mobile") && !DESKTOP.user_agent.contains("Mobile"));
    }
}
