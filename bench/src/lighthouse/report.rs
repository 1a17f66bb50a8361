//! The comparison's figures and its section of BENCHMARKS.md. The section and its summary rows
//! (marked *(lighthouse)*) are replaced where they are; the rest of the file is left as it is,
//! and `make bench`, which rewrites the file, carries them over (`carry_over`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::stats::{Band, middle, range, same_band, spearman};
use super::{FORM_FACTORS, Meta, Record, Source};
use crate::report::{Figure, Section, Table, num, summary_table};

/// The section's heading, without its date: how it is found again.
pub const HEADING: &str = "## Browser engine against Lighthouse";
/// Marks this section's rows in the summary table.
const MARK: &str = "*(lighthouse)*";
/// The bar for the browser engine.
const SPEARMAN_TARGET: f64 = 0.8;
const BAND_TARGET: f64 = 0.8;
const MIN_PAGES: usize = 24;
/// Below this a page's TBT is mostly zero on one side, and a ratio says nothing.
const TBT_FLOOR_MS: f64 = 50.0;

/// A source's successful runs of one form factor, by page.
fn runs<'a>(records: &'a [Record], source: Source, form_factor: &str) -> BTreeMap<&'a str, Vec<&'a Record>> {
    let mut by_page: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        if record.source == source && record.form_factor == form_factor && record.error.is_none() {
            by_page.entry(record.page.as_str()).or_default().push(record);
        }
    }
    by_page
}

/// Each page's median of one figure over its runs.
fn medians<'a>(
    records: &'a [Record],
    source: Source,
    form_factor: &str,
    figure: fn(&Record) -> Option<f64>,
) -> BTreeMap<&'a str, f64> {
    runs(records, source, form_factor)
        .into_iter()
        .filter_map(|(page, runs)| {
            let values: Vec<f64> = runs.iter().filter_map(|r| figure(r)).collect();
            middle(&values).map(|m| (page, m))
        })
        .collect()
}

fn score(record: &Record) -> Option<f64> {
    record.score
}

/// The pages both sides have a figure for, as (Lighthouse's, the engine's).
fn paired(reference: &BTreeMap<&str, f64>, other: &BTreeMap<&str, f64>) -> Vec<(f64, f64)> {
    reference.iter().filter_map(|(page, a)| other.get(page).map(|b| (*a, *b))).collect()
}

/// How far each page's scores spread across its runs.
fn ranges(records: &[Record], source: Source, form_factor: &str) -> Vec<f64> {
    runs(records, source, form_factor)
        .values()
        .filter(|runs| runs.len() >= 2)
        .filter_map(|runs| range(&runs.iter().filter_map(|r| r.score).collect::<Vec<_>>()))
        .collect()
}

/// The mean over pages of how far a page's scores spread across runs: what the target is
/// judged on. Not the median: Lighthouse's simulation repeats most pages' scores exactly, so
/// its median is 0 whatever its other pages do, a figure no measurement can match.
fn spread(records: &[Record], source: Source, form_factor: &str) -> Option<f64> {
    let ranges = ranges(records, source, form_factor);
    (!ranges.is_empty()).then(|| ranges.iter().sum::<f64>() / ranges.len() as f64)
}

/// The mean of the spreads and, beside it, their median.
fn spread_cell(records: &[Record], source: Source, form_factor: &str) -> String {
    match (spread(records, source, form_factor), middle(&ranges(records, source, form_factor))) {
        (Some(mean), Some(median)) => format!("{mean:.1} ({median:.1})"),
        _ => "—".into(),
    }
}

/// Spearman between Lighthouse's first and second runs of each page.
fn self_agreement(records: &[Record], form_factor: &str) -> Option<f64> {
    let of_run = |run: usize| -> BTreeMap<&str, f64> {
        runs(records, Source::Lighthouse, form_factor)
            .into_iter()
            .filter_map(|(page, runs)| runs.iter().find(|r| r.run == run).and_then(|r| r.score).map(|s| (page, s)))
            .collect()
    };
    spearman(&paired(&of_run(1), &of_run(2)))
}

/// How one source's scores stand against Lighthouse's in one form factor.
struct Agreement {
    pages: usize,
    spearman: Option<f64>,
    same_band: usize,
    spread: Option<f64>,
}

fn agreement(records: &[Record], source: Source, form_factor: &str) -> Agreement {
    let reference = medians(records, Source::Lighthouse, form_factor, score);
    let pairs = paired(&reference, &medians(records, source, form_factor, score));
    Agreement {
        pages: pairs.len(),
        spearman: spearman(&pairs),
        same_band: same_band(&pairs),
        spread: spread(records, source, form_factor),
    }
}

type Measure = fn(&Record) -> Option<f64>;

/// The metrics compared, how (ratio or difference), and over which pages.
const METRICS: [(&str, Measure, bool); 7] = [
    ("FCP", |r| r.fcp_ms, true),
    ("LCP", |r| r.lcp_ms, true),
    ("TBT", |r| r.tbt_ms, true),
    ("Speed Index", |r| r.speed_index_ms, true),
    ("CLS (difference)", |r| r.cls, false),
    ("bytes", |r| r.total_bytes, true),
    ("requests", |r| r.requests, true),
];

/// The median over pages of the engine's figure ÷ Lighthouse's (or − for CLS), and over how
/// many pages.
fn metric_ratio(
    records: &[Record],
    source: Source,
    form_factor: &str,
    (name, figure, ratio): (&str, Measure, bool),
) -> Option<(f64, usize)> {
    let pairs = paired(
        &medians(records, Source::Lighthouse, form_factor, figure),
        &medians(records, source, form_factor, figure),
    );
    let values: Vec<f64> = pairs
        .iter()
        .filter(|(reference, _)| !ratio || *reference > if name == "TBT" { TBT_FLOOR_MS } else { 0.0 })
        .map(|(reference, other)| if ratio { other / reference } else { other - reference })
        .collect();
    middle(&values).map(|m| (m, values.len()))
}

fn name(source: Source) -> &'static str {
    match source {
        Source::Lighthouse => "Lighthouse",
        Source::Browser => "browser engine",
        Source::Http => "http engine (delivery score)",
    }
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".into(), |v| num(v, decimals))
}

fn share(count: usize, of: usize) -> String {
    if of == 0 { "—".into() } else { format!("{count} of {of} ({:.0} %)", count as f64 * 100.0 / of as f64) }
}

/// `median (min–max)` of a page's runs, or its one value.
fn page_cell(runs: Option<&Vec<&Record>>) -> String {
    let scores: Vec<f64> = runs.map(|r| r.iter().filter_map(|r| r.score).collect()).unwrap_or_default();
    match (middle(&scores), range(&scores)) {
        (None, _) => "—".into(),
        (Some(m), Some(r)) if r > 0.0 => {
            let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{m:.0} ({min:.0}–{max:.0})")
        }
        (Some(m), _) => format!("{m:.0}"),
    }
}

pub fn section(meta: &Meta, records: &[Record]) -> Section {
    let has = |source: Source| records.iter().any(|r| r.source == source);
    let mut pages: Vec<&str> = records.iter().map(|r| r.page.as_str()).collect();
    pages.sort_unstable();
    pages.dedup();
    let docs = pages.iter().filter(|p| p.starts_with("rust/")).count();

    let mut agreement_table = Table::new(&[
        "form factor",
        "measured by",
        "pages",
        "Spearman with Lighthouse",
        "same band as Lighthouse",
        "run-to-run spread, points: mean (median) over pages",
    ]);
    let mut ratio_table =
        Table::new(&[&["form factor", "engine"][..], &METRICS.iter().map(|m| m.0).collect::<Vec<_>>()[..]].concat());
    let mut bands = String::new();
    for form_factor in FORM_FACTORS {
        let reference = medians(records, Source::Lighthouse, form_factor, score);
        let count = |band: Band| reference.values().filter(|s| Band::of(**s) == band).count();
        let _ = write!(
            bands,
            "{}{form_factor}: {} good, {} needs improvement, {} poor",
            if bands.is_empty() { "" } else { "; " },
            count(Band::Good),
            count(Band::NeedsImprovement),
            count(Band::Poor)
        );
        agreement_table.row(vec![
            form_factor.into(),
            "Lighthouse".into(),
            reference.len().to_string(),
            format!("{} (its run 1 against its run 2)", optional(self_agreement(records, form_factor), 2)),
            "—".into(),
            spread_cell(records, Source::Lighthouse, form_factor),
        ]);
        for source in [Source::Browser, Source::Http] {
            if !has(source) {
                agreement_table.row(vec![
                    form_factor.into(),
                    name(source).into(),
                    "not run".into(),
                    "—".into(),
                    "—".into(),
                    "—".into(),
                ]);
                continue;
            }
            let a = agreement(records, source, form_factor);
            agreement_table.row(vec![
                form_factor.into(),
                name(source).into(),
                a.pages.to_string(),
                optional(a.spearman, 2),
                share(a.same_band, a.pages),
                spread_cell(records, source, form_factor),
            ]);
            let mut row = vec![form_factor.to_owned(), name(source).to_owned()];
            for metric in METRICS {
                row.push(match metric_ratio(records, source, form_factor, metric) {
                    Some((value, n)) if metric.2 => format!("{}× ({n})", num(value, 2)),
                    Some((value, n)) => format!("{value:+.3} ({n})"),
                    None => "—".into(),
                });
            }
            ratio_table.row(row);
        }
    }

    let mut page_table = Table::new(&[
        "page",
        "what it varies",
        "Lighthouse mobile",
        "Lighthouse desktop",
        "browser mobile",
        "browser desktop",
        "http delivery mobile",
        "http delivery desktop",
    ]);
    let by = |source, form_factor| runs(records, source, form_factor);
    let tables = [
        by(Source::Lighthouse, "mobile"),
        by(Source::Lighthouse, "desktop"),
        by(Source::Browser, "mobile"),
        by(Source::Browser, "desktop"),
        by(Source::Http, "mobile"),
        by(Source::Http, "desktop"),
    ];
    for page in &pages {
        let what = meta.pages.get(*page).cloned().unwrap_or_default();
        let mut row = vec![format!("`{page}`"), what];
        row.extend(tables.iter().map(|t| page_cell(t.get(page))));
        page_table.row(row);
    }

    let failures: Vec<String> = records
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| format!("{} {} run {} `{}`: {e}", name(r.source), r.form_factor, r.run, r.page))
        })
        .collect();
    let failures = if failures.is_empty() {
        "Every run produced its metrics (no Lighthouse runtime error such as NO_FCP, no engine failure).".to_owned()
    } else {
        format!(
            "Runs that failed, left out of the figures ({}):\n\n{}\n",
            failures.len(),
            failures.iter().map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
        )
    };
    let per_run = |source: Source| {
        let seconds = meta.seconds.get(match source {
            Source::Lighthouse => "lighthouse",
            Source::Browser => "browser",
            Source::Http => "http",
        });
        let count = records.iter().filter(|r| r.source == source).count();
        match seconds {
            Some(s) if count > 0 => format!("{} {:.0} s ({:.1} s a run)", name(source), s, s / count as f64),
            _ => format!("{} not run", name(source)),
        }
    };
    let browser_note = if has(Source::Browser) {
        ""
    } else {
        "\n\n**The browser engine was not run** in this comparison: its rows are empty and its targets missed."
    };

    let markdown = format!(
        "{HEADING} (`make lighthouse-compare`, {date})\n\n\
         Lighthouse {lighthouse} (the `lighthouse` npm package pinned in `bench/lighthouse`; mobile is its default \
         config, desktop its `desktop-config.js`; the performance category only, with its default simulated \
         throttling; a fresh Chromium and profile per run) and the two engines on the same {n} pages, {runs} run{s} \
         of each page in each form factor, strictly one analysis at a time: Lighthouse's runs, then the browser \
         engine's, then the http engine's. {machine}; {chromium}; commit {commit}. The pages are {docs} pages of the \
         Rust documentation that ships with the toolchain (rustdoc's module indexes and its largest item pages, \
         such as `Vec`'s, and two mdBook pages) and {synthetic} pages the harness generates, each turning one or two \
         of the dials Lighthouse's score is most sensitive to (render-blocking CSS and scripts, long tasks, image \
         weight, a slow server, a late largest paint, layout shifts, web fonts); the last few combine them, since \
         blocking time and layout shift weigh 55 % and a desktop page scores below 50 only when it is bad at \
         several things. They are served on loopback by `speedbatch-bench serve` in a process of its own \
         (keep-alive, a 4096-connection backlog). What Lighthouse's simulation (Lantern) cannot see shows in its \
         scores and is kept so: a server's delay counts only as the median over the origin's responses (the \
         slow-server pages hold every response), a web font does not delay its simulated first paint, and a \
         timer's wait is not simulated (the late image waits on a script's download).\n\n\
         A page's score is the median of its runs. Each engine is set against Lighthouse's median score per page: \
         Spearman's rank correlation (tied scores share their average rank) and the share of pages in the same \
         band (good ≥ 90, needs improvement 50–89, poor < 50). The http engine's number is its delivery score, \
         not a performance score: it is put against the same cut points only to show how far it is from \
         predicting them. Run-to-run spread is the mean over pages of the highest minus the lowest score of a \
         page's runs (the median beside it says little: Lighthouse's simulation repeats most pages' scores \
         exactly, which makes its median 0 however far its other pages move). Lighthouse's own bands over the corpus: {bands}.{browser_note}\n\n{agreement}\n\
         Metrics, the median over pages of the engine's ÷ Lighthouse's (CLS: engine − Lighthouse; TBT only on the \
         pages where Lighthouse's median TBT is at least {tbt_floor:.0} ms), with the number of pages. \
         Lighthouse's metrics are simulated from an unthrottled load (its Lantern model), so a ratio near 1 says \
         the engine's conditions land where Lighthouse's model does. The http engine measures no paint: only \
         its bytes and requests compare.\n\n{ratios}\n\
         Every page, median (min–max) of its runs:\n\n{page_table}\n{failures}\n\n\
         Wall time: {wall}; {total:.0} minutes in all. The figures marked {MARK} in the summary come from this section, which \
         `make lighthouse-compare` rewrites alone; `speedbatch-bench lighthouse-compare --from \
         bench/lighthouse/last-run.jsonl` recomputes it from the kept runs, and `--measure browser` beside it \
         measures the browser engine again against the kept Lighthouse runs.\n",
        date = if meta.date.is_empty() { "undated" } else { &meta.date },
        lighthouse = if meta.lighthouse.is_empty() { "12.8.2" } else { &meta.lighthouse },
        n = pages.len(),
        runs = meta.runs,
        s = if meta.runs == 1 { "" } else { "s" },
        machine = meta.machine,
        chromium = meta.chromium,
        commit = meta.commit,
        synthetic = pages.len() - docs,
        agreement = agreement_table.render(),
        tbt_floor = TBT_FLOOR_MS,
        ratios = ratio_table.render(),
        page_table = page_table.render(),
        wall = [Source::Lighthouse, Source::Browser, Source::Http].map(per_run).join(", "),
        total = meta.seconds.values().sum::<f64>() / 60.0,
    );
    Section { markdown, figures: figures(records) }
}

fn figures(records: &[Record]) -> Vec<Figure> {
    let [mobile, desktop] = FORM_FACTORS.map(|f| agreement(records, Source::Browser, f));
    let ran = records.iter().any(|r| r.source == Source::Browser);
    let pair =
        |a: Option<f64>, b: Option<f64>, decimals| format!("{} / {}", optional(a, decimals), optional(b, decimals));
    let pct = |a: &Agreement| {
        if a.pages == 0 { None } else { Some(a.same_band as f64 * 100.0 / a.pages as f64) }
    };
    let rank_met =
        [&mobile, &desktop].iter().all(|a| a.pages >= MIN_PAGES && a.spearman.is_some_and(|s| s >= SPEARMAN_TARGET));
    let band_met = [&mobile, &desktop].iter().all(|a| pct(a).is_some_and(|p| p >= BAND_TARGET * 100.0));
    let [lh_mobile, lh_desktop] = FORM_FACTORS.map(|f| spread(records, Source::Lighthouse, f));
    let spread_met = [(mobile.spread, lh_mobile), (desktop.spread, lh_desktop)]
        .iter()
        .all(|(ours, theirs)| matches!((ours, theirs), (Some(o), Some(t)) if o <= t));
    let [http_mobile, http_desktop] = FORM_FACTORS.map(|f| agreement(records, Source::Http, f));
    let not_run = |value: String| if ran { value } else { "not run".into() };
    vec![
        Figure::new(
            &format!("{MARK} browser engine's score against Lighthouse's: Spearman, mobile / desktop"),
            not_run(format!(
                "{} ({} / {} pages)",
                pair(mobile.spearman, desktop.spearman, 2),
                mobile.pages,
                desktop.pages
            )),
            "≥ 0.8 each, ≥ 24 pages",
            Some(ran && rank_met),
        ),
        Figure::new(
            &format!("{MARK} browser engine: pages in Lighthouse's band, mobile / desktop"),
            not_run(format!("{} %", pair(pct(&mobile), pct(&desktop), 0))),
            "≥ 80 %",
            Some(ran && band_met),
        ),
        Figure::new(
            &format!(
                "{MARK} run-to-run spread of the score (points, mean over pages), mobile / desktop: browser engine (Lighthouse)"
            ),
            not_run(format!("{} ({})", pair(mobile.spread, desktop.spread, 1), pair(lh_mobile, lh_desktop, 1))),
            "≤ Lighthouse's",
            Some(ran && spread_met),
        ),
        Figure::new(
            &format!("{MARK} http delivery score against Lighthouse: Spearman, mobile / desktop; same band"),
            format!(
                "{}; {} and {} of {} pages",
                pair(http_mobile.spearman, http_desktop.spearman, 2),
                http_mobile.same_band,
                http_desktop.same_band,
                http_mobile.pages.max(http_desktop.pages)
            ),
            "",
            None,
        ),
        Figure::new(
            &format!("{MARK} Lighthouse against itself, run 1 vs run 2: Spearman, mobile / desktop"),
            pair(self_agreement(records, "mobile"), self_agreement(records, "desktop"), 2),
            "",
            None,
        ),
    ]
}

/// `document` with this section's summary rows and text in place of the ones it had (or
/// added: the rows at the end of the summary table, the text at the end of the file).
pub fn splice(document: &str, section: &Section) -> String {
    let summary = summary_table(std::slice::from_ref(section));
    let rows: Vec<String> = summary.lines().skip(2).map(str::to_owned).collect();
    if !document.contains("## Summary") {
        let rest = document.trim();
        let intro = if rest.is_empty() { "# Benchmarks\n\n".to_owned() } else { format!("{rest}\n\n") };
        return format!("{intro}## Summary\n\n{summary}\n{}", section.markdown);
    }
    splice_parts(document, &rows, &section.markdown)
}

/// Puts the section and its summary rows from `old` (a BENCHMARKS.md before `make bench`
/// rewrote it) into `new`, so that rewriting the rest does not drop a comparison that takes
/// most of an hour to redo.
pub fn carry_over(old: &str, new: String) -> String {
    let rows: Vec<String> = old.lines().filter(|l| l.starts_with(&format!("| {MARK}"))).map(str::to_owned).collect();
    let lines: Vec<&str> = old.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with(HEADING)) else { return new };
    let end = lines.iter().skip(start + 1).position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
    let markdown = format!("{}\n", lines[start..end].join("\n").trim_end());
    splice_parts(&new, &rows, &markdown)
}

fn splice_parts(document: &str, rows: &[String], markdown: &str) -> String {
    let mut lines: Vec<String> = document.lines().map(str::to_owned).collect();
    // The summary: this section's old rows out, its new ones at the end of the table.
    if let Some(summary) = lines.iter().position(|l| l.trim() == "## Summary") {
        lines.retain(|l| !l.starts_with(&format!("| {MARK}")));
        if let Some(first) = lines.iter().skip(summary).position(|l| l.starts_with('|')).map(|i| summary + i) {
            let end = lines.iter().skip(first).position(|l| !l.starts_with('|')).map_or(lines.len(), |i| first + i);
            lines.splice(end..end, rows.iter().cloned());
        }
    }
    // The section: in place of the old one, or at the end.
    let new: Vec<String> = markdown.trim_end().lines().map(str::to_owned).collect();
    match lines.iter().position(|l| l.starts_with(HEADING)) {
        Some(start) => {
            let end =
                lines.iter().skip(start + 1).position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
            let followed = end < lines.len();
            let mut replacement = new;
            if followed {
                replacement.push(String::new());
            }
            lines.splice(start..end, replacement);
        }
        None => {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            lines.push(String::new());
            lines.extend(new);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(source: Source, page: &str, form_factor: &str, run: usize, score: f64) -> Record {
        Record {
            source,
            page: page.into(),
            form_factor: form_factor.into(),
            run,
            score: Some(score),
            ..Record::default()
        }
    }

    const DOC: &str = "# Benchmarks\n\nIntro.\n\n## Summary\n\n| figure | median | target |  |\n| --- | --- | --- | --- |\n\
                       | a | 1 | | |\n| *(lighthouse)* old | 0 | | |\n\n## A\n\nText A.\n\n\
                       ## Browser engine against Lighthouse (old)\n\nOld text.\n\n## B\n\nText B.\n";

    fn section(markdown: &str) -> Section {
        Section {
            markdown: markdown.into(),
            figures: vec![Figure::new(&format!("{MARK} new"), "9".into(), "≥ 1", Some(true))],
        }
    }

    #[test]
    fn the_section_and_its_rows_are_replaced_in_place() {
        let out = splice(DOC, &section("## Browser engine against Lighthouse (new)\n\nNew text.\n"));
        assert!(out.contains("| a | 1 | | |\n| *(lighthouse)* new | 9 | ≥ 1 | met |\n\n## A"), "{out}");
        assert!(!out.contains("old"), "{out}");
        assert!(out.contains(
            "## A\n\nText A.\n\n## Browser engine against Lighthouse (new)\n\nNew text.\n\n## B\n\nText B.\n"
        ));
    }

    #[test]
    fn a_new_section_goes_at_the_end() {
        let doc = "# Benchmarks\n\n## Summary\n\n| figure | v | t |  |\n| --- | --- | --- | --- |\n| a | 1 | | |\n\n## A\n\nText.\n\n";
        let out = splice(doc, &section("## Browser engine against Lighthouse (x)\n\nNew.\n"));
        assert!(out.ends_with("## A\n\nText.\n\n## Browser engine against Lighthouse (x)\n\nNew.\n"), "{out}");
        assert!(out.contains("| a | 1 | | |\n| *(lighthouse)* new | 9 | ≥ 1 | met |\n"));
        let empty = splice("", &section("## Browser engine against Lighthouse (x)\n\nNew.\n"));
        assert!(empty.starts_with("# Benchmarks\n\n## Summary\n\n| figure |"), "{empty}");
    }

    #[test]
    fn rewriting_the_rest_carries_the_section_over() {
        let rewritten = "# Benchmarks\n\n## Summary\n\n| figure | v | t |  |\n| --- | --- | --- | --- |\n| b | 2 | | |\n\n## A\n\nNew A.\n";
        let out = carry_over(DOC, rewritten.into());
        assert!(out.contains("| b | 2 | | |\n| *(lighthouse)* old | 0 | | |\n\n## A"), "{out}");
        assert!(out.ends_with("New A.\n\n## Browser engine against Lighthouse (old)\n\nOld text.\n"), "{out}");
        assert_eq!(carry_over("# nothing\n", rewritten.into()), rewritten);
    }

    #[test]
    fn agreement_pairs_medians_page_by_page() {
        let mut records = Vec::new();
        for (page, lh, ours) in
            [("a", [95.0, 97.0, 96.0], 92.0), ("b", [60.0, 70.0, 65.0], 55.0), ("c", [20.0, 30.0, 25.0], 51.0)]
        {
            for (run, score) in lh.iter().enumerate() {
                records.push(record(Source::Lighthouse, page, "mobile", run + 1, *score));
                records.push(record(Source::Browser, page, "mobile", run + 1, ours));
            }
        }
        records.push(Record { error: Some("timed out".into()), ..record(Source::Browser, "a", "mobile", 4, 0.0) });
        let a = agreement(&records, Source::Browser, "mobile");
        assert_eq!((a.pages, a.same_band), (3, 2), "c: 25 is poor, 51 needs improvement");
        assert_eq!(a.spearman, Some(1.0));
        assert_eq!(a.spread, Some(0.0), "the failed run is left out");
        assert_eq!(spread(&records, Source::Lighthouse, "mobile").map(|s| (s * 10.0).round()), Some(73.0));
        assert_eq!(spread_cell(&records, Source::Lighthouse, "mobile"), "7.3 (10.0)", "ranges 2, 10, 10");
        assert_eq!(spread_cell(&records, Source::Http, "mobile"), "—");
        assert_eq!(self_agreement(&records, "mobile"), Some(1.0));
    }
}
