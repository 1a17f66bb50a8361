//! What a job keeps in DynamoDB, by DynamoDB's own size rules: every item under the job's key
//! and its entries in the indexes that project it, each with the 100 bytes of overhead
//! DynamoDB stores (and bills) per item. Read back from the table after the job.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// DynamoDB's per-item storage overhead (table and each index entry alike).
const ITEM_OVERHEAD: usize = 100;

/// The size DynamoDB gives an attribute value.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// A number's size: one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    1 + significant.len().div_ceil(2) + usize::from(n.starts_with('-'))
}

/// An item's size: each attribute's name and value.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// The sizes of `names` in `item` (those it has).
fn part_size(item: &HashMap<String, AttributeValue>, names: &[&str]) -> usize {
    names.iter().filter_map(|name| item.get(*name).map(|v| name.len() + value_size(v))).sum()
}

/// What one job keeps: its items, and their entries in the indexes (the table's keys and
/// each index's projection, as the template declares them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stored {
    pub items: usize,
    pub table_bytes: usize,
    pub index_bytes: usize,
    /// The largest task item: under 1 KB it is one write unit.
    pub largest_task: usize,
}

impl Stored {
    pub fn total(&self) -> usize {
        self.table_bytes + self.index_bytes
    }

    pub fn add(&mut self, item: &HashMap<String, AttributeValue>) {
        let size = item_size(item);
        self.items += 1;
        self.table_bytes += size + ITEM_OVERHEAD;
        let is_task = item.get("sk").and_then(|sk| sk.as_s().ok()).is_some_and(|sk| sk.starts_with("URL#"));
        if is_task {
            self.largest_task = self.largest_task.max(size);
        }
        let keys = part_size(item, &["pk", "sk"]);
        // by_cache: keys only; by_url_history: job_id, seq and the headline; by_tenant and
        // by_monitor: the job item, all attributes.
        if item.contains_key("cache_pk") {
            self.index_bytes += keys + part_size(item, &["cache_pk", "cache_sk"]) + ITEM_OVERHEAD;
        }
        if item.contains_key("hist_pk") {
            self.index_bytes +=
                keys + part_size(item, &["hist_pk", "hist_sk", "job_id", "seq", "hist"]) + ITEM_OVERHEAD;
        }
        if item.contains_key("gsi1pk") {
            self.index_bytes += size + ITEM_OVERHEAD;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(value_size(&AttributeValue::S("JOB#1".into())), 5);
        assert_eq!(number_size("123"), 3, "two bytes of digits and one");
        assert_eq!(number_size("-1000"), 3);
        assert_eq!(value_size(&AttributeValue::M(HashMap::from([("a".into(), AttributeValue::Bool(true))]))), 6);
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("JOB#1".into())),
            ("sk".to_owned(), AttributeValue::S("URL#000001".into())),
            ("cache_pk".to_owned(), AttributeValue::S("C".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 5 + 2 + 10 + 8 + 1);
        let mut stored = Stored::default();
        stored.add(&item);
        assert_eq!(stored.table_bytes, 28 + 100);
        assert_eq!(stored.index_bytes, 19 + 9 + 100);
        assert_eq!(stored.largest_task, 28);
    }
}
