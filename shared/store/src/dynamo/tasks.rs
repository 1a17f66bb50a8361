//! The analyzer's writes: results (with the history and reuse index entry), retries and
//! cancelled URLs, and its reads of a batch's URLs and jobs. Nothing is written when an
//! analysis starts (`domain::lifecycle`): a result is one conditional update of its URL's
//! item, from unfinished; the tracker adds it to the job's counters from the table's stream
//! ([`domain::tally`]), and an invocation's places go back once per set.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::history::Headline;
use domain::lifecycle::{CANCEL, Outcome, RETRY, Recorded};
use domain::places::{Full, Lease};
use domain::time::Millis;
use domain::{Analysis, CacheKey, CachedFrom, Error, ErrorKind, JobId, JobStatus, UrlStatus};

use super::items::{HISTORY_INDEX, REUSE_VARIANT, TaskItem};
use super::moves::{Expression, task_move};
use super::packed;
use super::{DynamoStore, Item, applied, av_n, av_s, from_item, number_of, raced, status_of};
use crate::{OutcomeRecord, Sighting, TaskWork};

impl DynamoStore {
    /// A result's update of its URL's item: its move, and the move's payload (error, analysis,
    /// and for a new successful analysis its entry in the history and reuse index).
    fn outcome_update(&self, record: &OutcomeRecord, now: Millis) -> Result<Expression, Error> {
        let item = self.task_item_id(&record.job_id, record.seq, now);
        let mut task = task_move(&record.outcome.task_move(), now, record.attempt, &item);
        if let Outcome::Failed { kind, reason, .. } = &record.outcome {
            task = task
                .set("#error = :error, error_kind = :kind")
                .name("#error", "error")
                .value(":error", av_s(reason.as_str()))
                .value(":kind", av_s(kind.as_str()));
        }
        if let Some(analysis) = record.outcome.analysis() {
            task = task.set("analysis = :analysis").value(":analysis", packed::attribute(analysis)?);
        }
        // The URL's history and its reuse: one index entry, the headline alone projected with
        // the variant it is reused for. A reused result is not indexed again: its age is its
        // original analysis's.
        let fresh = record.outcome.analysis().filter(|_| record.outcome.is_fresh_success());
        if let (Some(key), Some(analysis)) = (record.history_key(), fresh) {
            let mut headline: Item =
                serde_dynamo::to_item(Headline::of(analysis)).map_err(|e| Error::Corrupt(e.to_string()))?;
            if let Some(cache) = &record.cache_key {
                headline.insert(REUSE_VARIANT.to_owned(), av_s(cache.variant()));
            }
            task = task
                .set("hist_pk = :hist_pk, hist_sk = :now, hist = :hist")
                .value(":hist_pk", av_s(key.as_str()))
                .value(":hist", AttributeValue::M(headline));
        }
        Ok(task)
    }

    /// Writes one result: its item moves from unfinished, or, when it had moved on already,
    /// the item as it was says a duplicate (there) from a URL that is not.
    async fn record_one(&self, record: &OutcomeRecord, now: Millis) -> Result<Recorded, Error> {
        let update = self.outcome_update(record, now)?;
        match raced(update.update_item(self, Self::task_key(&record.job_id, record.seq)).await)? {
            Ok(()) => Ok(Recorded::Counted),
            Err(Some(_)) => Ok(Recorded::Duplicate),
            Err(None) => Err(Error::NotFound),
        }
    }
}

/// The key attributes of an item as read: what a look-up's answers are matched by.
fn item_key(item: &Item) -> Option<(String, String)> {
    match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some((pk.clone(), sk.clone())),
        _ => None,
    }
}

fn key_pair(key: &Item) -> Option<(String, String)> {
    item_key(key)
}

impl TaskWork for DynamoStore {
    async fn look_up(&self, keys: &[(JobId, u32)]) -> Result<Vec<Option<Sighting>>, Error> {
        // Each item once: BatchGetItem refuses a key twice, and a batch may hold two copies of
        // one message (and does hold several URLs of one job).
        let mut wanted: Vec<Item> = Vec::with_capacity(keys.len() * 2);
        let mut asked = std::collections::HashSet::new();
        for (id, seq) in keys {
            if asked.insert((id, Some(*seq))) {
                wanted.push(Self::task_key(id, *seq));
            }
            if asked.insert((id, None)) {
                wanted.push(Self::job_key(id));
            }
        }
        let items = self
            .batch_get(wanted, |request| {
                request
                    .projection_expression("pk, sk, #status, started_at, total_urls")
                    .expression_attribute_names("#status", "status")
            })
            .await?;
        let found: HashMap<(String, String), Item> =
            items.into_iter().filter_map(|item| Some((item_key(&item)?, item))).collect();
        let read = |key: Item| key_pair(&key).and_then(|key| found.get(&key));
        keys.iter()
            .map(|(id, seq)| {
                let Some(job) = read(Self::job_key(id)) else { return Ok(None) };
                // A URL with no item has not changed since it was listed: queued.
                let task = match read(Self::task_key(id, *seq)) {
                    Some(task) => status_of::<UrlStatus>(task)?,
                    None if number_of(job, "total_urls").is_some_and(|total| i64::from(*seq) < total) => {
                        UrlStatus::Queued
                    }
                    None => return Ok(None),
                };
                Ok(Some(Sighting {
                    task,
                    job: status_of::<JobStatus>(job)?,
                    started: number_of(job, "started_at").is_some(),
                }))
            })
            .collect()
    }

    async fn start_job(&self, id: &JobId, now: Millis) -> Result<(), Error> {
        let update = Expression::default()
            .set("started_at = :now, updated_at = :now")
            .value(":now", av_n(now))
            .condition("attribute_exists(pk) AND attribute_not_exists(started_at)");
        // Not applied: started already (another batch of the job's got there first), or gone.
        applied(update.update_item(self, Self::job_key(id)).await).map(drop)
    }

    async fn take_places(&self, asks: &[Vec<Lease>], now: Millis) -> Result<Vec<Result<(), Full>>, Error> {
        self.take_places_of(asks, now).await
    }

    async fn give_places_back(&self, leases: &[Lease]) -> Result<(), Error> {
        self.give_back(leases).await
    }

    async fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        attempt: u32,
        now: Millis,
    ) -> Result<(), Error> {
        let update = task_move(&RETRY, now, attempt, &self.task_item_id(id, seq, now))
            .set("#error = :error, error_kind = :kind")
            .name("#error", "error")
            .value(":error", av_s(reason))
            .value(":kind", av_s(kind.as_str()));
        // Not applied: finished or cancelled meanwhile, and the retry has nothing left to keep.
        applied(update.update_item(self, Self::task_key(id, seq)).await).map(drop)
    }

    async fn record(&self, record: &OutcomeRecord, now: Millis) -> Result<Recorded, Error> {
        let mut recorded = self.record_outcomes(std::slice::from_ref(record), now).await;
        recorded.pop().unwrap_or_else(|| Err(Error::Conflict("a result was not answered".into())))
    }

    async fn pause_host(&self, host: &str, until: Millis) -> Result<(), Error> {
        self.pause(host, until).await
    }

    async fn record_outcomes(&self, records: &[OutcomeRecord], now: Millis) -> Vec<Result<Recorded, Error>> {
        let recorded = futures::future::join_all(records.iter().map(|record| self.record_one(record, now))).await;
        // Every delivery frees the places it took, whatever became of its result. Not given
        // back (an error), a place is taken back when its lease ends: the results stand.
        let places: Vec<Lease> = records.iter().flat_map(|record| record.places.iter().cloned()).collect();
        if let Err(err) = self.give_back(&places).await {
            tracing::warn!(error = %err, "giving places back failed; they are taken back when their leases end");
        }
        recorded
    }

    async fn cancel_task(&self, id: &JobId, seq: u32, from: UrlStatus, now: Millis) -> Result<bool, Error> {
        if !CANCEL.from.contains(&from) {
            return Ok(false);
        }
        // From exactly `from`, the counter it leaves: a result or the tracker's bulk cancel
        // coming first fails the write.
        let task = task_move(&CANCEL, now, 0, &self.task_item_id(id, seq, now));
        let task = match from {
            UrlStatus::Queued => task.status_in_or_absent("#status", "was", &[from.as_str()]),
            _ => task.status_in("#status", "was", &[from.as_str()]),
        };
        let items = self.move_with_job(id, seq, &CANCEL, from, task, now)?;
        Ok(self.transact(items).await?.is_none())
    }

    async fn task_urls(&self, keys: &[(JobId, u32)]) -> Result<HashMap<(JobId, u32), String>, Error> {
        #[derive(serde::Deserialize)]
        struct Url {
            job_id: JobId,
            seq: u32,
            url: String,
        }
        let mut by_job: HashMap<&JobId, Vec<u32>> = HashMap::new();
        for (id, seq) in keys {
            by_job.entry(id).or_default().push(*seq);
        }
        let mut urls = HashMap::with_capacity(keys.len());
        for (id, seqs) in by_job {
            let mut listed = self.listed(id, seqs.iter().copied()).await?;
            urls.extend(seqs.iter().filter_map(|seq| Some(((id.clone(), *seq), listed.remove(seq)?.url))));
        }
        // A job submitted before lists has its URLs in their items.
        let unlisted: Vec<Item> =
            keys.iter().filter(|key| !urls.contains_key(*key)).map(|(id, seq)| Self::task_key(id, *seq)).collect();
        if unlisted.is_empty() {
            return Ok(urls);
        }
        let items = self
            .batch_get(unlisted, |request| {
                request
                    .projection_expression("job_id, #seq, #url")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_names("#url", "url")
            })
            .await?;
        for item in items {
            let found = from_item::<Url>(item)?;
            urls.insert((found.job_id, found.seq), found.url);
        }
        Ok(urls)
    }

    async fn cached_result(&self, key: &CacheKey, since: Millis) -> Result<Option<Analysis>, Error> {
        // The URL's newest results in its history index, the variant's first among them; the
        // index holds headlines, so the analysis is one more read of the task it names.
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(HISTORY_INDEX)
            .key_condition_expression("hist_pk = :key AND hist_sk >= :since")
            .filter_expression("hist.#variant = :variant")
            .expression_attribute_names("#variant", REUSE_VARIANT)
            .expression_attribute_values(":key", av_s(key.history().as_str()))
            .expression_attribute_values(":since", av_n(since))
            .expression_attribute_values(":variant", av_s(key.variant()))
            .projection_expression("pk, sk, hist_sk")
            .scan_index_forward(false)
            .limit(i32::try_from(crate::REUSE_LOOKS_AT).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::store("Query", e))?;
        let Some(entry) = found.items().first() else { return Ok(None) };
        let (Some(pk), Some(sk), Some(AttributeValue::N(at))) =
            (entry.get("pk"), entry.get("sk"), entry.get("hist_sk"))
        else {
            return Err(Error::Corrupt("a history index entry without its keys".into()));
        };
        let analyzed_at: Millis = at.parse().map_err(|_| Error::Corrupt(format!("history entry time {at:?}")))?;
        let key = HashMap::from([("pk".to_owned(), pk.clone()), ("sk".to_owned(), sk.clone())]);
        let Some(item) = self.get_consistent(key).await? else { return Ok(None) };
        let task = from_item::<TaskItem>(item)?.into_task();
        Ok(task.analysis.map(|analysis| Analysis {
            cached_from: Some(CachedFrom { job_id: task.job_id, analyzed_at }),
            ..analysis
        }))
    }
}
