//! The lab metrics a page's own performance timeline gives, collected by `observe.js` (which
//! the engine installs before the page's scripts run) and read back when the page has
//! settled: FCP, LCP and its element, CLS as Chrome defines it (the largest session window of
//! layout shifts), and Total Blocking Time from the main thread's long tasks.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::cdp::{Cdp, CdpError};

/// Installed with `Page.addScriptToEvaluateOnNewDocument`; fills `window.__speedbatch`.
pub const OBSERVER: &str = include_str!("observe.js");
/// Asks the page for what the observer collected and its clock; the page answers from a timer
/// of its own (see `observe.js`), hence `awaitPromise`.
const READ: &str = "window.__speedbatch ? window.__speedbatch.read() : null";

/// What the page's observer collected so far, and whether its main thread is busy now. A page
/// without the observer (an error page) reads as an empty timeline.
pub async fn read(cdp: &Cdp, session: Option<&str>, wait: Duration) -> Result<Timeline, CdpError> {
    let params = json!({"expression": READ, "returnByValue": true, "awaitPromise": true});
    let read = cdp.call(session, "Runtime.evaluate", params, wait).await?;
    Ok(serde_json::from_value(read["result"]["value"].clone()).unwrap_or_default())
}

/// A task longer than this blocks input; what it runs beyond is its blocking time.
const BLOCKING_AFTER_MS: f64 = 50.0;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub fcp: Option<f64>,
    pub lcp: Option<f64>,
    pub lcp_element: Option<LcpElement>,
    #[serde(default)]
    pub windows: Vec<ShiftWindow>,
    /// `[start, duration]` of each long task, in ms from navigation start.
    #[serde(default)]
    pub long_tasks: Vec<(f64, f64)>,
    /// The page's clock when this was read (ms from navigation start).
    #[serde(default)]
    pub now: f64,
    /// How late the read's own timer fired (ms): the main thread was busy just now.
    #[serde(default)]
    pub late: f64,
}

/// The element the largest contentful paint painted.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct LcpElement {
    pub selector: String,
    pub text: String,
    pub src: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ShiftWindow {
    pub start: f64,
    pub end: f64,
    pub value: f64,
}

impl Timeline {
    /// Cumulative Layout Shift: the largest session window's sum (0 when nothing shifted).
    pub fn cls(&self) -> f64 {
        self.windows.iter().map(|w| w.value).fold(0.0, f64::max)
    }

    /// When the main thread was last busy with a long task (ms from navigation start).
    pub fn last_busy(&self) -> f64 {
        self.long_tasks.iter().map(|&(start, duration)| start + duration).fold(0.0, f64::max)
    }

    /// No long task for `quiet` ms, and none holding the thread while this was read (its timer
    /// fired on time, within Lighthouse's 50 ms).
    pub fn main_thread_quiet(&self, quiet: f64) -> bool {
        self.late < BLOCKING_AFTER_MS && self.now - self.last_busy() >= quiet
    }

    /// When the viewport stopped changing: the later of the largest paint and the last
    /// layout shift.
    pub fn visually_complete(&self) -> Option<f64> {
        let last_shift = self.windows.iter().map(|w| w.end).fold(0.0, f64::max);
        Some(self.lcp.or(self.fcp)?.max(last_shift))
    }

    /// Speed Index, approximated: the viewport's visual progress taken as rising evenly from
    /// the first contentful paint to visual completion, which makes the index their mean.
    /// Lighthouse measures progress from screenshots instead; how far the two differ on the
    /// validation corpus is in BENCHMARKS.md ("Browser engine against Lighthouse").
    pub fn speed_index(&self) -> Option<f64> {
        let fcp = self.fcp?;
        Some((fcp + self.visually_complete()?.max(fcp)) / 2.0)
    }

    /// Total Blocking Time from FCP to `until` (ms): each long task's part inside that span,
    /// less the first 50 ms of it. `None` without an FCP (nothing to measure from).
    pub fn tbt(&self, until: f64) -> Option<f64> {
        let from = self.fcp?;
        let blocking = self
            .long_tasks
            .iter()
            .map(|&(start, duration)| {
                let inside = (start + duration).min(until) - start.max(from);
                (inside - BLOCKING_AFTER_MS).max(0.0)
            })
            // From +0: an empty float sum is -0, which would read "-0.0".
            .fold(0.0, |total, blocked| total + blocked);
        Some(blocking)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cls_is_the_largest_window_and_tbt_counts_what_blocks_after_fcp() {
        let timeline: Timeline = serde_json::from_value(serde_json::json!({
            "fcp": 1000.0, "lcp": 1800.0,
            "lcpElement": {"selector": "img.hero", "text": "", "src": "https://a.example/hero.jpg"},
            "windows": [{"start": 900.0, "end": 1200.0, "value": 0.05}, {"start": 4000.0, "end": 4100.0, "value": 0.12}],
            "longTasks": [[500.0, 600.0], [2000.0, 120.0], [3000.0, 40.0], [9000.0, 300.0]]
        }))
        .unwrap();
        assert_eq!(timeline.cls(), 0.12);
        // 1000–1100 of the first (100 − 50), the second (120 − 50), not the third (< 50), the
        // fourth cut at 9100 (100 − 50).
        assert_eq!(timeline.tbt(9_100.0), Some(50.0 + 70.0 + 50.0));
        assert_eq!(Timeline::default().tbt(1_000.0), None, "no paint: nothing to measure from");
        assert_eq!(Timeline::default().cls(), 0.0);
        let idle = Timeline { fcp: Some(100.0), ..Timeline::default() };
        assert_eq!(idle.tbt(5_000.0).map(|t| t.to_string()), Some("0".to_owned()), "0, not -0");
        assert_eq!(timeline.last_busy(), 9_300.0);
        // Visually complete at the last shift (4100), after the largest paint (1800).
        assert_eq!(timeline.speed_index(), Some((1000.0 + 4100.0) / 2.0));
        assert_eq!(Timeline::default().speed_index(), None);
        assert_eq!(timeline.lcp_element.map(|e| e.selector), Some("img.hero".to_owned()));
    }

    #[test]
    fn the_thread_is_quiet_only_with_no_recent_long_task_and_an_on_time_read() {
        let read =
            |now: f64, late: f64| Timeline { long_tasks: vec![(1_000.0, 200.0)], now, late, ..Timeline::default() };
        assert!(read(2_200.0, 3.0).main_thread_quiet(1_000.0));
        assert!(!read(2_199.0, 3.0).main_thread_quiet(1_000.0), "a long task ended under a second ago");
        // A task still running when the engine asked holds the read's timer: its entry is not
        // in yet, but the late timer says the thread is busy.
        assert!(!read(5_000.0, 180.0).main_thread_quiet(1_000.0));
    }
}
