//! What a job keeps in DynamoDB, by DynamoDB's own size rules: every item under the job's key
//! and its entries in the indexes that project it, each with the 100 bytes of overhead
//! DynamoDB stores (and bills) per item. Read back from the table after the job.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use store::dynamo::size::{item_size, value_size};

/// DynamoDB's per-item storage overhead (table and each index entry alike).
const ITEM_OVERHEAD: usize = 100;

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
        // by_url_history: job_id, seq and the headline; by_tenant and by_monitor: the job
        // item, all attributes.
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
    fn a_job_keeps_its_items_and_their_index_entries() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("JOB#1".into())),
            ("sk".to_owned(), AttributeValue::S("URL#000001".into())),
            ("hist_pk".to_owned(), AttributeValue::S("H".into())),
        ]);
        let mut stored = Stored::default();
        stored.add(&item);
        assert_eq!(stored.table_bytes, 2 + 5 + 2 + 10 + 7 + 1 + 100);
        assert_eq!(stored.index_bytes, 19 + 8 + 100);
        assert_eq!(stored.largest_task, 27);
    }
}
