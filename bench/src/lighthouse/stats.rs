//! The statistics the comparison quotes: Spearman's rank correlation (ties take their average
//! rank, as scipy and R do: scores are integers, so ties are common), Lighthouse's bands, and
//! medians over runs.

/// Lighthouse's score bands (the report's colours): good ≥ 90, needs improvement 50–89,
/// poor < 50, on the score as it is shown, a whole number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Band {
    Good,
    NeedsImprovement,
    Poor,
}

impl Band {
    pub fn of(score: f64) -> Band {
        let shown = score.round();
        if shown >= 90.0 {
            Band::Good
        } else if shown >= 50.0 {
            Band::NeedsImprovement
        } else {
            Band::Poor
        }
    }
}

/// How many of the pairs (reference, other) fall in the same band.
pub fn same_band(pairs: &[(f64, f64)]) -> usize {
    pairs.iter().filter(|(a, b)| Band::of(*a) == Band::of(*b)).count()
}

/// 1-based ranks, tied values sharing the average of the ranks they span.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) are ranks start+1..=end; their average:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation of the two lists' ranks; `None` for fewer than 3 pairs or a list
/// whose values are all equal (no order to agree with).
pub fn spearman(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let x = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let mean = (pairs.len() as f64 + 1.0) / 2.0;
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        xy += (a - mean) * (b - mean);
        xx += (a - mean) * (a - mean);
        yy += (b - mean) * (b - mean);
    }
    (xx > 0.0 && yy > 0.0).then(|| xy / (xx * yy).sqrt())
}

/// The median, the mean of the middle two for an even count (a page's runs are few, and the
/// lower middle of two runs would be their minimum); `None` for no values.
pub fn middle(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Largest minus smallest; `None` for no values.
pub fn range(values: &[f64]) -> Option<f64> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some(max - min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn tied_values_share_their_average_rank() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0]), [1.0, 3.0, 2.0]);
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 5.0, 0.0]), [4.0, 2.0, 4.0, 4.0, 1.0]);
        assert_eq!(ranks(&[7.0, 7.0]), [1.5, 1.5]);
        assert!(ranks(&[]).is_empty());
    }

    #[test]
    fn spearman_of_the_same_and_the_opposite_order() {
        let same: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), f64::from(i * i))).collect();
        assert!(close(spearman(&same).unwrap(), 1.0), "any increasing function ranks alike");
        let opposite: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), -f64::from(i))).collect();
        assert!(close(spearman(&opposite).unwrap(), -1.0));
    }

    #[test]
    fn spearman_with_ties_is_pearson_on_average_ranks() {
        // Ranks (1, 2.5, 2.5, 4) against (1, 3, 2, 4): covariance 4.5 over √(4.5 × 5) = 3/√10,
        // what scipy.stats.spearmanr gives.
        let pairs = [(1.0, 1.0), (2.0, 3.0), (2.0, 2.0), (3.0, 4.0)];
        assert!(close(spearman(&pairs).unwrap(), 3.0 / 10f64.sqrt()));
        // Ranks (4.5, 4.5, 3, 1.5, 1.5, 6) against (4, 5, 3, 2, 1, 6): 16.5 / √(16.5 × 17.5).
        let scores = [(90.0, 88.0), (90.0, 95.0), (50.0, 60.0), (20.0, 40.0), (20.0, 10.0), (100.0, 99.0)];
        assert!(close(spearman(&scores).unwrap(), (16.5f64 / 17.5).sqrt()));
    }

    #[test]
    fn spearman_needs_three_pairs_and_some_spread() {
        assert_eq!(spearman(&[(1.0, 2.0), (2.0, 3.0)]), None);
        assert_eq!(spearman(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)]), None, "one side all equal");
    }

    #[test]
    fn bands_cut_at_90_and_50_on_the_shown_score() {
        assert_eq!(Band::of(100.0), Band::Good);
        assert_eq!(Band::of(90.0), Band::Good);
        assert_eq!(Band::of(89.6), Band::Good, "shown as 90");
        assert_eq!(Band::of(89.4), Band::NeedsImprovement);
        assert_eq!(Band::of(50.0), Band::NeedsImprovement);
        assert_eq!(Band::of(49.0), Band::Poor);
        assert_eq!(Band::of(0.0), Band::Poor);
    }

    #[test]
    fn band_agreement_counts_pairs_in_the_same_band() {
        let pairs = [(95.0, 91.0), (95.0, 89.0), (70.0, 50.0), (49.0, 50.0), (10.0, 0.0)];
        assert_eq!(same_band(&pairs), 3);
        assert_eq!(same_band(&[]), 0);
    }

    #[test]
    fn medians_and_ranges_of_a_pages_runs() {
        assert_eq!(middle(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(middle(&[4.0, 1.0]), Some(2.5));
        assert_eq!(middle(&[]), None);
        assert_eq!(range(&[70.0, 64.0, 72.0]), Some(8.0));
        assert_eq!(range(&[]), None);
    }
}
