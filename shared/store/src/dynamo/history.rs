//! A URL's history: one Query of the sparse `by_url_history` index, which holds each new
//! analysis's headline numbers (a few hundred bytes) and nothing else of the task.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::history::{Headline, HistoryCursor, HistoryEntry, HistoryKey, Span};
use domain::{Error, JobId};

use super::items::{HISTORY_INDEX, job_pk, task_sk};
use super::{DynamoStore, Item, av_n, av_s, number_of};
use crate::{History, Page};

impl History for DynamoStore {
    async fn url_history(
        &self,
        key: &HistoryKey,
        span: Span,
        limit: usize,
        after: Option<&HistoryCursor>,
    ) -> Result<Page<HistoryEntry, HistoryCursor>, Error> {
        let start = after.map(|cursor| {
            HashMap::from([
                ("hist_pk".to_owned(), av_s(key.as_str())),
                ("hist_sk".to_owned(), av_n(cursor.analyzed_at)),
                ("pk".to_owned(), av_s(job_pk(&cursor.job_id))),
                ("sk".to_owned(), av_s(task_sk(cursor.seq))),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(HISTORY_INDEX)
            .key_condition_expression("hist_pk = :key AND hist_sk BETWEEN :from AND :to")
            .expression_attribute_values(":key", av_s(key.as_str()))
            .expression_attribute_values(":from", av_n(span.from))
            .expression_attribute_values(":to", av_n(span.to))
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::store("Query", e))?;
        let items = output.items().iter().map(entry_of).collect::<Result<Vec<_>, Error>>()?;
        let next = match output.last_evaluated_key() {
            Some(_) => items.last().map(HistoryCursor::of),
            None => None,
        };
        Ok(Page { items, next })
    }
}

fn entry_of(item: &Item) -> Result<HistoryEntry, Error> {
    let corrupt = |what: &str| Error::Corrupt(format!("a history index entry without {what}"));
    let job_id = match item.get("job_id") {
        Some(AttributeValue::S(id)) => JobId::parse(id).ok_or_else(|| corrupt("a valid job id"))?,
        _ => return Err(corrupt("its job id")),
    };
    let seq = number_of(item, "seq").and_then(|n| u32::try_from(n).ok()).ok_or_else(|| corrupt("its position"))?;
    let analyzed_at = number_of(item, "hist_sk").ok_or_else(|| corrupt("its time"))?;
    let headline: Headline =
        serde_dynamo::from_attribute_value(item.get("hist").cloned().ok_or_else(|| corrupt("its numbers"))?)
            .map_err(|e| Error::Corrupt(format!("a history entry's numbers: {e}")))?;
    Ok(HistoryEntry { job_id, seq, analyzed_at, headline })
}
