//! BENCHMARKS.md's sections: a table per figure, one row per run, and the median and spread
//! that the text quotes.

pub use testkit::markdown::Table;

/// `median (min–max)` with `decimals` places: the form every figure is quoted in.
pub fn spread(values: &[f64], decimals: usize) -> String {
    if values.is_empty() {
        return "no runs".to_owned();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let median = crate::stats::median(values);
    format!("{median:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// A number with `decimals` places.
pub fn num(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// Whether a figure meets its target, for the summary table.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// One benchmark's part of BENCHMARKS.md, and its headline figures for the summary.
pub struct Section {
    pub markdown: String,
    pub figures: Vec<Figure>,
}

/// A headline figure against its target (`met: None` where there is no target).
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

impl Figure {
    pub fn new(name: &str, value: String, target: &str, met: Option<bool>) -> Figure {
        Figure { name: name.to_owned(), value, target: target.to_owned(), met }
    }
}

/// The summary table of every section's figures.
pub fn summary_table(sections: &[Section]) -> String {
    let mut table = Table::new(&["figure", "median (min–max) of the runs", "target", ""]);
    for figure in sections.iter().flat_map(|s| &s.figures) {
        let met = figure.met.map_or("", verdict);
        table.row(vec![figure.name.clone(), figure.value.clone(), figure.target.clone(), met.to_owned()]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_quotes_the_lower_median_and_the_range() {
        assert_eq!(spread(&[3.0, 1.0, 2.0], 1), "2.0 (1.0–3.0)");
        assert_eq!(spread(&[4.0, 1.0], 0), "1 (1–4)");
        assert_eq!(spread(&[], 0), "no runs");
    }

    #[test]
    fn a_table_has_a_header_rule_and_rows() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["1".into(), "2".into()]);
        assert_eq!(table.render(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
