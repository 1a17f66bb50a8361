//! Waiting URLs by reason ([`domain::waits`]): `WAITS#<reason>` / `<bucket end, 13 digits>`
//! holds `urls`, added to once per analyzer invocation that sent URLs back to wait; the
//! buckets still ahead are one Query.

use domain::Error;
use domain::time::Millis;
use domain::waits::{WaitNote, WaitReason, Waiting};

use super::moves::Expression;
use super::{DynamoStore, av_n, av_s, number_of};
use crate::WaitLog;

/// A bucket outlives its end by this much, then its TTL removes it.
const KEPT_SECONDS: i64 = 3_600;

fn pk(reason: WaitReason) -> String {
    format!("WAITS#{reason}")
}

/// Fixed width, so that the sort key's text order is time order.
fn sk(bucket_end: Millis) -> String {
    format!("{bucket_end:013}")
}

impl WaitLog for DynamoStore {
    async fn note_waits(&self, notes: &[WaitNote]) -> Result<(), Error> {
        let writes = notes.iter().map(|note| {
            let key = DynamoStore::key_of(&pk(note.reason), &sk(note.bucket_end));
            Expression::default()
                .add("urls :n")
                .value(":n", av_n(note.urls))
                .set("expires_at = :expires")
                .value(":expires", av_n(note.bucket_end / 1000 + KEPT_SECONDS))
                .update_item(self, key)
        });
        for written in futures::future::join_all(writes).await {
            written.map_err(|e| Error::store("UpdateItem", e))?;
        }
        Ok(())
    }

    async fn waiting(&self, now: Millis) -> Result<Waiting, Error> {
        let mut waiting = Waiting::default();
        for reason in WaitReason::ALL {
            // At most one bucket per second ahead: the longest wait (15 minutes, SQS's longest
            // delay) is 900 small items, well within one page of a Query.
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk > :now")
                .expression_attribute_values(":pk", av_s(pk(*reason)))
                .expression_attribute_values(":now", av_s(sk(now)))
                .projection_expression("urls")
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            let urls: i64 = output.items().iter().filter_map(|item| number_of(item, "urls")).sum();
            waiting.add(*reason, u64::try_from(urls).unwrap_or(0));
        }
        Ok(waiting)
    }
}
