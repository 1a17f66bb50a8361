//! What a person reads: a progress bar, tables, durations in words.

use aws::queue::{NotMoved, RedriveSummary};
use serde_json::Value;

const BAR_WIDTH: usize = 24;

pub fn count(job: &Value, field: &str) -> u64 {
    job[field].as_u64().unwrap_or(0)
}

/// "45 s", "4 min 35 s", "2 h 5 min".
pub fn duration_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 if seconds.is_multiple_of(60) => format!("{} min", seconds / 60),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// One line: bar, percent, counts, rate and time left.
pub fn progress_line(job: &Value) -> String {
    let total = count(job, "total_urls");
    let done = count(job, "succeeded") + count(job, "failed") + count(job, "cancelled");
    let percent = job["progress_percent"].as_f64().unwrap_or(0.0).clamp(0.0, 100.0);
    let filled = ((percent / 100.0) * BAR_WIDTH as f64).round() as usize;
    let mut line = format!(
        "[{}{}] {:>5.1}% {done}/{total}  ok {}  failed {}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        percent,
        count(job, "succeeded"),
        count(job, "failed"),
    );
    if count(job, "cancelled") > 0 {
        line.push_str(&format!("  cancelled {}", count(job, "cancelled")));
    }
    if let Some(rate) = job["urls_per_minute"].as_f64() {
        line.push_str(&format!("  · {rate:.0} URLs/min"));
    }
    match (job["status"].as_str(), job["eta_seconds"].as_u64()) {
        (Some("pending" | "processing"), Some(eta)) if done < total => {
            line.push_str(&format!("  · about {} left", duration_words(eta)))
        }
        (Some(status), _) => line.push_str(&format!("  · {}", status.replace('_', " "))),
        _ => {}
    }
    line
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The end of a watched job: how it ended, where the URLs went, why they failed, the scores.
pub fn final_summary(job: &Value, summary: &Value) -> String {
    let mut out = format!(
        "{} {}: {}\n",
        job["batch_job_id"].as_str().unwrap_or("?"),
        job["name"].as_str().map(|n| format!("({n})")).unwrap_or_default(),
        job["status"].as_str().unwrap_or("?").replace('_', " ")
    );
    let statuses: Vec<Vec<String>> =
        ["succeeded", "failed", "cancelled"].iter().map(|s| vec![(*s).to_owned(), count(job, s).to_string()]).collect();
    out.push_str(&table(&["urls", "count"], &statuses));
    if let Some(errors) = summary["errors_by_kind"].as_object().filter(|e| !e.is_empty()) {
        let rows: Vec<Vec<String>> =
            errors.iter().map(|(kind, n)| vec![kind.replace('_', " "), n.to_string()]).collect();
        out.push_str(&table(&["failed because", "count"], &rows));
    }
    let score = &summary["score"];
    if score.is_object() {
        out.push_str(&format!(
            "score p50 {}  p75 {}  p95 {}  (of {} URLs)\n",
            score["p50"], score["p75"], score["p95"], score["count"]
        ));
    }
    let delivery = &summary["metrics"]["delivery_score"];
    if delivery.is_object() {
        out.push_str(&format!(
            "delivery score p50 {}  p75 {}  p95 {}  (of {} URLs; how the pages are delivered, not a performance score)\n",
            delivery["p50"], delivery["p75"], delivery["p95"], delivery["count"]
        ));
    }
    out.push_str(&field_verdicts(summary));
    out
}

/// A result's field data in a cell: the Core Web Vitals verdict and the LCP p75 (`poor 4.2 s`),
/// marked `(origin)` when the Chrome UX Report had only the origin's, which is not this page's
/// own experience; `unavailable` or `error`; `-` for a row without field data.
pub fn field(metrics: &Value) -> String {
    match metrics["field_status"].as_str() {
        Some("available") => {
            // No verdict without both LCP and CLS, though the other p75s may be there.
            let verdict = metrics["field_overall_category"].as_str().unwrap_or("no_verdict").replace('_', " ");
            let mut cell = match metrics["field_lcp_ms"].as_f64() {
                Some(lcp) => format!("{verdict} {}", millis(lcp)),
                None => verdict,
            };
            if metrics["field_source"] == "origin" {
                cell.push_str(" (origin)");
            }
            cell
        }
        Some(status) => status.to_owned(),
        None => "-".into(),
    }
}

/// Milliseconds as read: `850 ms`, `4.2 s`.
fn millis(ms: f64) -> String {
    if ms < 1_000.0 { format!("{ms:.0} ms") } else { format!("{:.1} s", ms / 1_000.0) }
}

/// The summary's count of each field verdict as a line, or nothing when the job asked for no
/// field data. The API leaves a verdict no URL got out: it is 0.
pub fn field_verdicts(summary: &Value) -> String {
    let Some(verdicts) = summary["field_verdicts"].as_object() else { return String::new() };
    let count = |verdict: &str| verdicts.get(verdict).and_then(Value::as_u64).unwrap_or(0);
    format!(
        "field data: {} good, {} needs improvement, {} poor, {} unavailable\n",
        count("good"),
        count("needs_improvement"),
        count("poor"),
        count("unavailable")
    )
}

/// The http engine's delivery score with its band (`72 mixed`), or `-`.
pub fn delivery(metrics: &Value) -> String {
    match (metrics["delivery_score"].as_f64(), metrics["delivery_band"].as_str()) {
        (Some(_), Some(band)) => format!("{} {band}", number(&metrics["delivery_score"])),
        (Some(_), None) => number(&metrics["delivery_score"]),
        _ => "-".into(),
    }
}

/// One queue's redrive: "high: 12 moved", what was not moved and why, one message a line.
pub fn redrive_line(label: &str, summary: &RedriveSummary) -> String {
    let mut line = format!("{label}: {} moved", summary.moved);
    let groups: [(&[NotMoved], &str); 3] = [
        (&summary.failed, "not moved"),
        (&summary.skipped, "left for the queue that dead-lettered them"),
        (&summary.not_deleted, "moved but still in the dead-letter queue"),
    ];
    for (messages, what) in groups {
        if !messages.is_empty() {
            line.push_str(&format!(", {} {what}", messages.len()));
        }
    }
    for (messages, _) in groups {
        for message in messages {
            line.push_str(&format!("\n  {}: {}", message.message_id, message.reason));
        }
    }
    line
}

/// The end of a redrive: messages moved and not moved per queue, and in all.
pub fn redrive_summary(queues: &[(&str, Option<&RedriveSummary>)]) -> String {
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|(label, summary)| match summary {
            Some(s) => vec![
                (*label).to_owned(),
                s.moved.to_string(),
                s.failed.len().to_string(),
                s.skipped.len().to_string(),
                s.dead_letter.clone(),
            ],
            None => vec![(*label).to_owned(), "-".into(), "-".into(), "-".into(), "(failed)".into()],
        })
        .collect();
    let mut out = table(&["queue", "moved", "not moved", "skipped", "dead-letter queue"], &rows);
    let moved: u64 = queues.iter().filter_map(|(_, s)| *s).map(|s| s.moved).sum();
    out.push_str(&format!("{moved} messages moved back\n"));
    out
}

/// A metric cell: a number rounded for reading, or empty.
pub fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{n:.0}"),
        Some(n) => format!("{n:.1}"),
        None => String::new(),
    }
}

/// A monitor in a few lines: what it runs, when, and how its runs went.
pub fn monitor(m: &Value) -> String {
    let text = |field: &str| m[field].as_str().unwrap_or("-").to_owned();
    let mut out = format!("{} {}\n", text("monitor_id"), text("name"));
    let urls = match m["sitemap_url"].as_str() {
        Some(sitemap) => format!("the sitemap {sitemap}"),
        None => format!("{} URLs", m["url_count"]),
    };
    out.push_str(&format!(
        "{} on {}, {}\n",
        urls,
        text("schedule"),
        if m["enabled"] == true { "enabled" } else { "disabled" }
    ));
    out.push_str(&format!("next run {}\n", m["next_run_at"].as_str().unwrap_or("none (disabled)")));
    out.push_str(&format!("runs {}, last {} (job {})\n", m["runs"], text("last_run_at"), text("last_job_id")));
    if m["skipped_runs"].as_u64().unwrap_or(0) > 0 {
        let reason = m["last_skip"]["reason"].as_str().unwrap_or("?").replace('_', " ");
        out.push_str(&format!("skipped {}, last because: {reason}\n", m["skipped_runs"]));
    }
    for budget in m["budgets"].as_array().into_iter().flatten() {
        let limit = match (budget["max"].as_f64(), budget["min"].as_f64()) {
            (Some(max), _) => format!("<= {}", number(&Value::from(max))),
            (_, Some(min)) => format!(">= {}", number(&Value::from(min))),
            _ => String::new(),
        };
        let labels = budget["labels"].as_str().map(|l| format!(" (labels {l})")).unwrap_or_default();
        out.push_str(&format!("budget {} {limit}{labels}\n", budget["metric"].as_str().unwrap_or("?")));
    }
    out
}

/// Monitors as a table.
pub fn monitors(list: &[Value]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            vec![
                m["monitor_id"].as_str().unwrap_or("?").to_owned(),
                m["schedule"].as_str().unwrap_or("?").to_owned(),
                m["next_run_at"].as_str().unwrap_or("disabled").to_owned(),
                m["runs"].to_string(),
                m["skipped_runs"].to_string(),
                m["name"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    table(&["id", "schedule", "next run", "runs", "skipped", "name"], &rows)
}

/// A monitor's budget standings as a table, grouped by budget as the API pages them.
pub fn standings(list: &[Value]) -> String {
    if list.is_empty() {
        return "no URL in that state against any budget\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s["budget"].as_str().unwrap_or("?").to_owned(),
                s["state"].as_str().unwrap_or("?").to_owned(),
                number(&s["value"]),
                s["since"].as_str().unwrap_or("?").to_owned(),
                s["callback"]["state"].as_str().unwrap_or("-").to_owned(),
                s["url"].as_str().unwrap_or("?").to_owned(),
            ]
        })
        .collect();
    table(&["budget", "state", "value", "since", "callback", "url"], &rows)
}

/// A URL's history as a table, oldest first.
pub fn history(url: &str, metric: &str, points: &[Value]) -> String {
    if points.is_empty() {
        let hint = if metric == "score" {
            " (the http engine gives a delivery score, not a performance score: --metric delivery_score)"
        } else {
            ""
        };
        return format!("{url}: no {metric} measured yet{hint}\n");
    }
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            let spread =
                p["spread"].as_f64().map(|s| format!("±{}", number(&Value::from(s / 2.0)))).unwrap_or_default();
            vec![
                p["analyzed_at"].as_str().unwrap_or("?").to_owned(),
                format!("{}{spread}", number(&p["value"])),
                format!("{} {}", p["engine"].as_str().unwrap_or("?"), p["strategy"].as_str().unwrap_or("?")),
                p["batch_job_id"].as_str().unwrap_or("?").to_owned(),
            ]
        })
        .collect();
    format!("{url}: {metric}\n{}", table(&["analyzed", metric, "engine", "job"], &rows))
}

/// A comparison: the counts, then each URL that changed (all with `all`), regressions first
/// as the API orders them, with the score's move and what decided the verdict.
pub fn comparison(counts: &Value, urls: &[Value], all: bool) -> String {
    let count = |verdict: &str| counts[verdict].as_u64().unwrap_or(0);
    let mut out = format!(
        "{} regressed, {} improved, {} new, {} gone, {} unchanged\n",
        count("regressed"),
        count("improved"),
        count("new"),
        count("gone"),
        count("unchanged")
    );
    // The performance score, or when no URL has one (the http engine's), the delivery score.
    let delivered = !urls.iter().any(|u| u["base"]["score"].is_number() || u["head"]["score"].is_number());
    let field = if delivered { "delivery_score" } else { "score" };
    let rows: Vec<Vec<String>> = urls
        .iter()
        .filter(|u| all || u["verdict"] != "unchanged")
        .map(|u| {
            let score = |side: &str| number(&u[side][field]);
            vec![
                u["verdict"].as_str().unwrap_or("?").to_owned(),
                format!("{} → {}", score("base"), score("head")),
                u["url"].as_str().unwrap_or("?").to_owned(),
                u["reasons"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(&["verdict", if delivered { "delivery" } else { "score" }, "url", "why"], &rows));
    }
    out
}

/// `GET /usage` as lines: each limit with what is used of it, and which are the tenant's own.
pub fn usage(report: &Value) -> String {
    let own: Vec<&str> =
        report["own_limits"].as_array().map_or_else(Vec::new, |names| names.iter().filter_map(Value::as_str).collect());
    let line = |name: &str, label: &str, used: Option<&Value>| {
        let allowed = number(&report["limits"][name]);
        let whose = if own.contains(&name) { "your tenant's own limit" } else { "the deployment's default" };
        match used {
            Some(used) => format!("{label:<22} {} of {allowed}  ({whose})\n", number(used)),
            None => format!("{label:<22} at most {allowed}  ({whose})\n"),
        }
    };
    let mut out = String::new();
    out.push_str(&line("max_active_jobs", "unfinished jobs", Some(&report["usage"]["active_jobs"])));
    out.push_str(&line("max_urls_per_day", "URL analyses today", Some(&report["usage"]["urls_today"])));
    out.push_str(&line("max_in_flight", "URLs analysed at once", None));
    let weight = number(&report["limits"]["quota_weight"]);
    if !weight.is_empty() {
        let whose = if own.contains(&"quota_weight") { "your tenant's own" } else { "the deployment's default" };
        out.push_str(&format!("{:<22} weight {weight} against other tenants waiting  ({whose})\n", "PSI quota share"));
    }
    out.push_str(&format!(
        "the day ({}) ends at {} (UTC)\n",
        report["day"].as_str().unwrap_or("?"),
        report["day_resets_at"].as_str().unwrap_or("?")
    ));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_shows_each_limit_with_its_use_and_whose_it_is() {
        let report = json!({"limits": {"max_active_jobs": 5, "max_urls_per_day": 250000, "max_in_flight": 100,
                                       "quota_weight": 3},
                            "own_limits": ["max_active_jobs", "quota_weight"], "usage": {"active_jobs": 2, "urls_today": 1200},
                            "day": "2026-12-04", "day_resets_at": "2026-12-05T00:00:00.000Z"});
        let text = usage(&report);
        assert!(text.contains("unfinished jobs        2 of 5  (your tenant's own limit)"), "{text}");
        assert!(text.contains("URL analyses today     1200 of 250000  (the deployment's default)"), "{text}");
        assert!(text.contains("URLs analysed at once  at most 100"), "{text}");
        assert!(
            text.contains("PSI quota share        weight 3 against other tenants waiting  (your tenant's own)"),
            "{text}"
        );
    }

    #[test]
    fn a_comparison_lists_what_changed_regressions_first_and_unchanged_only_when_asked() {
        let counts = json!({"regressed": 1, "improved": 0, "new": 0, "gone": 0, "unchanged": 1});
        let urls = [
            json!({"url": "https://a.example/slow", "verdict": "regressed", "reasons": ["ttfb_ms +800 (noise 50)"],
                   "base": {"status": "succeeded", "score": 92}, "head": {"status": "succeeded", "score": 61.5}}),
            json!({"url": "https://a.example/", "verdict": "unchanged",
                   "base": {"status": "succeeded", "score": 90}, "head": {"status": "succeeded", "score": 91}}),
        ];
        let text = comparison(&counts, &urls, false);
        assert_eq!(
            text,
            "1 regressed, 0 improved, 0 new, 0 gone, 1 unchanged\n\
             verdict    score      url                     why\n\
             regressed  92 → 61.5  https://a.example/slow  ttfb_ms +800 (noise 50)\n"
        );
        assert!(comparison(&counts, &urls, true).contains("unchanged  90 → 91"), "--all lists every URL");
    }

    #[test]
    fn a_monitor_reads_as_what_it_runs_when_and_how_its_runs_went() {
        let m = json!({"monitor_id": "m1", "name": "home", "url_count": 3, "schedule": "rate(1 hour)", "enabled": true,
                       "next_run_at": "2026-12-04T11:00:00.000Z", "runs": 2, "last_run_at": "2026-12-04T10:00:00.000Z",
                       "last_job_id": "j2", "skipped_runs": 1, "last_skip": {"reason": "previous_running"},
                       "budgets": [{"metric": "lcp_ms", "max": 2500.0}, {"metric": "score", "min": 90, "labels": "tier:gold"}]});
        assert_eq!(
            monitor(&m),
            "m1 home\n3 URLs on rate(1 hour), enabled\nnext run 2026-12-04T11:00:00.000Z\n\
             runs 2, last 2026-12-04T10:00:00.000Z (job j2)\nskipped 1, last because: previous running\n\
             budget lcp_ms <= 2500\nbudget score >= 90 (labels tier:gold)\n"
        );
        assert!(
            monitors(&[m]).lines().nth(1).unwrap().starts_with("m1  rate(1 hour)  2026-12-04T11:00:00.000Z  2     1")
        );
    }

    #[test]
    fn standings_show_each_url_over_each_budget_since_when() {
        let rows = [
            json!({"budget": "lcp_ms <= 2500", "state": "breached", "value": 3100.0, "since": "2026-12-04T10:00:00.000Z",
                           "callback": {"state": "delivered"}, "url": "https://a.example/"}),
        ];
        let text = standings(&rows);
        assert!(text.starts_with("budget          state     value  since"), "{text}");
        assert!(
            text.contains("lcp_ms <= 2500  breached  3100   2026-12-04T10:00:00.000Z  delivered  https://a.example/"),
            "{text}"
        );
        assert_eq!(standings(&[]), "no URL in that state against any budget\n");
    }

    #[test]
    fn a_history_shows_each_point_oldest_first_with_its_spread() {
        let points = [
            json!({"analyzed_at": "2026-12-01T00:00:00.000Z", "value": 80, "engine": "http", "strategy": "mobile", "batch_job_id": "j1"}),
            json!({"analyzed_at": "2026-12-02T00:00:00.000Z", "value": 70, "spread": 6, "engine": "http", "strategy": "mobile", "batch_job_id": "j2"}),
        ];
        let text = history("https://a.example", "score", &points);
        assert!(text.starts_with("https://a.example: score\nanalyzed"), "{text}");
        assert!(text.contains("2026-12-02T00:00:00.000Z  70±3   http mobile  j2"), "{text}");
        assert_eq!(history("https://a.example", "lcp_ms", &[]), "https://a.example: no lcp_ms measured yet\n");
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(duration_words(45), "45 s");
        assert_eq!(duration_words(120), "2 min");
        assert_eq!(duration_words(275), "4 min 35 s");
        assert_eq!(duration_words(7_500), "2 h 5 min");
    }

    #[test]
    fn the_progress_line_shows_counts_rate_and_time_left() {
        let job = json!({"status": "processing", "total_urls": 1000, "succeeded": 490, "failed": 10,
                         "cancelled": 0, "progress_percent": 50.0, "urls_per_minute": 120.4, "eta_seconds": 250});
        assert_eq!(
            progress_line(&job),
            "[############------------]  50.0% 500/1000  ok 490  failed 10  · 120 URLs/min  · about 4 min 10 s left"
        );
        let done = json!({"status": "completed_with_errors", "total_urls": 2, "succeeded": 1, "failed": 1,
                          "cancelled": 0, "progress_percent": 100.0, "urls_per_minute": null, "eta_seconds": 0});
        assert!(progress_line(&done).ends_with("· completed with errors"), "{}", progress_line(&done));
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![vec!["a".to_owned(), "long value".to_owned()], vec!["bbbb".to_owned(), "x".to_owned()]];
        assert_eq!(table(&["k", "v"], &rows), "k     v\na     long value\nbbbb  x\n");
    }

    #[test]
    fn the_final_summary_names_failures_and_scores() {
        let job = json!({"batch_job_id": "j1", "name": "nightly", "status": "completed_with_errors",
                         "succeeded": 9, "failed": 1, "cancelled": 0});
        let summary =
            json!({"errors_by_kind": {"http_4xx": 1}, "score": {"count": 9, "p50": 80.0, "p75": 90.0, "p95": 97.0}});
        let text = final_summary(&job, &summary);
        assert!(text.starts_with("j1 (nightly): completed with errors\n"), "{text}");
        assert!(text.contains("succeeded  9\n") && text.contains("http 4xx        1\n"), "{text}");
        assert!(text.contains("score p50 80.0  p75 90.0  p95 97.0  (of 9 URLs)"), "{text}");
        assert_eq!(number(&json!(12.0)), "12");
        assert_eq!(number(&json!(12.345)), "12.3");
        assert_eq!(number(&Value::Null), "");
    }

    #[test]
    fn the_http_engines_number_is_shown_as_a_delivery_score_never_as_the_score() {
        let job = json!({"batch_job_id": "j1", "status": "completed", "succeeded": 3, "failed": 0, "cancelled": 0});
        let summary = json!({"metrics": {"delivery_score": {"count": 3, "p50": 72.0, "p75": 80.0, "p95": 91.0}}});
        let text = final_summary(&job, &summary);
        assert!(!text.contains("\nscore"), "{text}");
        assert!(text.contains("delivery score p50 72.0  p75 80.0  p95 91.0  (of 3 URLs; how the pages are delivered, not a performance score)"), "{text}");
        assert_eq!(delivery(&json!({"delivery_score": 72.0, "delivery_band": "mixed"})), "72 mixed");
        assert_eq!(delivery(&json!({"ttfb_ms": 3})), "-");
        let urls =
            [json!({"url": "https://a.example/", "verdict": "regressed", "reasons": ["ttfb_ms +800 (noise 50)"],
                           "base": {"status": "succeeded", "score": null, "delivery_score": 92},
                           "head": {"status": "succeeded", "score": null, "delivery_score": 70}})];
        let text = comparison(&json!({"regressed": 1}), &urls, false);
        assert!(text.contains("verdict    delivery  url") && text.contains("regressed  92 → 70"), "{text}");
        assert!(history("https://a.example", "score", &[]).contains("--metric delivery_score"));
    }

    #[test]
    fn a_field_cell_shows_the_verdict_and_the_lcp_p75_and_whose_data_it_is() {
        let poor = json!({"field_status": "available", "field_source": "url", "field_lcp_ms": 4_200,
                          "field_cls": 0.3, "field_overall_category": "poor"});
        assert_eq!(field(&poor), "poor 4.2 s");
        let origin = json!({"field_status": "available", "field_source": "origin", "field_lcp_ms": 2_600,
                            "field_overall_category": "needs_improvement"});
        assert_eq!(field(&origin), "needs improvement 2.6 s (origin)");
        let fast = json!({"field_status": "available", "field_source": "url", "field_lcp_ms": 850,
                          "field_overall_category": "good"});
        assert_eq!(field(&fast), "good 850 ms");
        let no_cls = json!({"field_status": "available", "field_source": "url", "field_lcp_ms": 1_900});
        assert_eq!(field(&no_cls), "no verdict 1.9 s");
        assert_eq!(field(&json!({"field_status": "unavailable"})), "unavailable");
        assert_eq!(field(&json!({"field_status": "error", "field_error": "HTTP 503"})), "error");
        assert_eq!(field(&json!({"ttfb_ms": 120})), "-");
    }

    #[test]
    fn the_field_verdicts_line_counts_each_verdict_and_is_absent_without_field_data() {
        let summary = json!({"field_verdicts": {"good": 3, "needs_improvement": 1, "poor": 2, "unavailable": 1}});
        assert_eq!(field_verdicts(&summary), "field data: 3 good, 1 needs improvement, 2 poor, 1 unavailable\n");
        let some = json!({"field_verdicts": {"poor": 2}});
        assert_eq!(field_verdicts(&some), "field data: 0 good, 0 needs improvement, 2 poor, 0 unavailable\n");
        assert_eq!(field_verdicts(&json!({"score": {"count": 1}})), "");
        let job = json!({"batch_job_id": "j1", "status": "completed", "succeeded": 3, "failed": 0, "cancelled": 0});
        let text = final_summary(&job, &summary);
        assert!(text.ends_with("field data: 3 good, 1 needs improvement, 2 poor, 1 unavailable\n"), "{text}");
    }

    #[test]
    fn a_redrive_says_what_moved_and_what_did_not() {
        let mut summary = RedriveSummary { moved: 12, dead_letter: "http://q/high-dlq".into(), ..Default::default() };
        assert_eq!(redrive_line("high", &summary), "high: 12 moved");
        summary.failed.push(NotMoved { message_id: "m1".into(), reason: "MissingParameter: no group".into() });
        assert_eq!(redrive_line("high", &summary), "high: 12 moved, 1 not moved\n  m1: MissingParameter: no group");
        let text = redrive_summary(&[("high", Some(&summary)), ("low", None)]);
        assert_eq!(
            text,
            "queue  moved  not moved  skipped  dead-letter queue\n\
             high   12     1          0        http://q/high-dlq\n\
             low    -      -          -        (failed)\n\
             12 messages moved back\n"
        );
    }
}
