//! The analyzer's writes: claims, take-overs, retries, results (with the history and reuse
//! index entry), and cancelled URLs. Claims of one SQS batch share one transaction when they
//! can (group commit); when a condition in it fails nothing is written and each URL is
//! claimed alone, which tells which one failed. A result is one conditional update of its
//! URL's item: the tracker adds it to the job's counters from the table's stream
//! ([`domain::tally`]), and an invocation's places go back once per set.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use domain::history::Headline;
use domain::lifecycle::{self, CLAIM, Claim, ClaimStep, GIVE_BACK, JobState, Outcome, RETRY, Recorded, TAKE_OVER};
use domain::places::{self, Full, Lease, Place};
use domain::time::Millis;
use domain::waits::WaitReason;
use domain::{Analysis, CacheKey, CachedFrom, Error, ErrorKind, JobId, JobStatus, UrlStatus};

use super::items::{HISTORY_INDEX, REUSE_VARIANT, TaskItem};
use super::moves::{Expression, Shifts, job_condition, task_move};
use super::packed;
use super::places::by_place;
use super::{Check, DynamoStore, Item, applied, av_n, av_s, from_item, number_of, raced, status_of};
use crate::{ClaimRequest, OutcomeRecord, TaskWork};

/// URLs claimed in one transaction: with one counter update per job and their places (a
/// tenant's and a host's each), at most DynamoDB's 100 items.
const BATCH_TRANSACTION_URLS: usize = 20;
/// Take-overs tried when another delivery keeps moving the URL underneath.
const TAKE_OVER_ROUNDS: u32 = 3;
/// Claims tried after taking back a full set's ended places, before waiting.
const PLACE_ROUNDS: u32 = 2;

/// Whether URLs touching these task items can share one transaction: more than one of them
/// (or there is nothing to gain), and no item twice (DynamoDB refuses a transaction that
/// touches one item twice).
fn batchable<'a>(keys: impl Iterator<Item = (&'a JobId, u32)>) -> bool {
    let mut seen = HashSet::new();
    let mut count = 0;
    for key in keys {
        count += 1;
        if !seen.insert(key) {
            return false;
        }
    }
    count > 1
}

/// What became of claims written together.
enum Together {
    Written,
    /// Only places' conditions failed: these sets are full (or paused, or hold ended leases).
    PlacesFull(Vec<Place>),
    /// Another condition failed (a duplicate, a take-over, a cancelling job), or the write did.
    Failed,
}

/// The claim a task item calls for, decided by `domain::lifecycle::claim_step`.
fn claim_step_of(id: &JobId, seq: u32, task: &Item, job: JobState, now: Millis) -> Result<ClaimStep, Error> {
    let status: UrlStatus = status_of(task)?;
    lifecycle::claim_step(status, number_of(task, "lease_until"), job, now)
        .map_err(|e| Error::Conflict(format!("URL {seq} of job {id}: {e}")))
}

impl DynamoStore {
    /// A result's update of its URL's item: its move, and the move's payload (error, analysis,
    /// and for a new successful analysis its entry in the history and reuse index).
    fn outcome_update(record: &OutcomeRecord, now: Millis) -> Result<Expression, Error> {
        let mut task = task_move(&record.outcome.task_move(), now, now);
        if let Outcome::Failed { kind, reason, .. } = &record.outcome {
            task = task
                .set("#error = :error, error_kind = :kind")
                .name("#error", "error")
                .value(":error", av_s(reason.as_str()))
                .value(":kind", av_s(kind.as_str()));
        }
        if let Some(analysis) = record.outcome.analysis() {
            task = task.set("analysis = :analysis").value(":analysis", packed::attribute(analysis)?);
            for (name, value) in packed::filterable(analysis) {
                task = task.set(format!("{name} = :{name}")).value(&format!(":{name}"), av_s(value));
            }
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

    /// Writes one result: its item moves from `processing`, or, when it had moved on already,
    /// the item as it was says a duplicate (there) from a URL that is not.
    async fn record_one(&self, record: &OutcomeRecord, now: Millis) -> Result<Recorded, Error> {
        let update = Self::outcome_update(record, now)?;
        match raced(update.update_item(self, Self::task_key(&record.job_id, record.seq)).await)? {
            Ok(()) => Ok(Recorded::Counted),
            Err(Some(_)) => Ok(Recorded::Duplicate),
            Err(None) => Err(Error::NotFound),
        }
    }

    /// Claims queued URLs of running jobs in one transaction, each job's counters moved once
    /// and each set's places taken once for all its URLs; when a condition failed nothing was
    /// written, and which kind of member failed says what to do next.
    async fn claim_together(&self, claims: &[&ClaimRequest], now: Millis) -> Result<Together, Error> {
        let mut items = Vec::with_capacity(claims.len() + 1);
        let mut jobs: HashMap<&JobId, Shifts> = HashMap::new();
        for claim in claims {
            let until = lifecycle::lease_end(now, claim.lease);
            items.push(task_move(&CLAIM, now, until).update(&self.table, Self::task_key(&claim.job_id, claim.seq))?);
            jobs.entry(&claim.job_id).or_default().add(&CLAIM, UrlStatus::Queued, 1);
        }
        for (id, shifts) in jobs {
            items.push(shifts.update(now).update(&self.table, Self::job_key(id))?);
        }
        let claims_and_jobs = items.len();
        let mut sets = Vec::new();
        for (place, (holders, limit)) in by_place(claims.iter().flat_map(|c| &c.places)) {
            // More of one set than it may have at all (the caller keeps those out).
            let Some(take) = self.place_take(place, holders, limit, now)? else { return Ok(Together::Failed) };
            items.push(take);
            sets.push(place.clone());
        }
        Ok(match self.transact(items).await? {
            None => Together::Written,
            Some(checks) if checks[..claims_and_jobs].iter().any(Check::failed) => Together::Failed,
            Some(checks) => Together::PlacesFull(
                sets.into_iter().zip(&checks[claims_and_jobs..]).filter(|(_, c)| c.failed()).map(|(p, _)| p).collect(),
            ),
        })
    }

    /// Claims one transaction's worth of URLs. Those that could not have their places even if
    /// every set were empty (beyond a set's limit in this batch) wait without a write; the
    /// rest are claimed together. When that fails because some sets are full, the URLs of
    /// those sets are claimed alone (which takes back ended leases and says how long to wait)
    /// and the others together once more; when it fails for another reason, each URL is
    /// claimed alone, which tells what became of it.
    async fn claim_chunk(&self, chunk: &[ClaimRequest], now: Millis) -> Vec<Result<Claim, Error>> {
        let beyond = places::beyond_limits(chunk.iter().map(|c| c.places.as_slice()));
        let mut results: Vec<Option<Result<Claim, Error>>> =
            beyond.into_iter().map(|full| full.map(|full| Ok(Claim::Full(full)))).collect();
        let mut together: Vec<usize> = (0..chunk.len()).filter(|i| results[*i].is_none()).collect();
        let mut alone = Vec::new();
        for round in 0..2 {
            let batch: Vec<&ClaimRequest> = together.iter().map(|i| &chunk[*i]).collect();
            if !batchable(batch.iter().map(|c| (&c.job_id, c.seq))) {
                break;
            }
            match self.claim_together(&batch, now).await {
                Ok(Together::Written) => {
                    together.drain(..).for_each(|i| results[i] = Some(Ok(Claim::Claimed)));
                    break;
                }
                Ok(Together::PlacesFull(full)) if round == 0 => {
                    let (blocked, free) = together
                        .iter()
                        .partition::<Vec<usize>, _>(|i| chunk[**i].places.iter().any(|l| full.contains(&l.place)));
                    alone.extend(blocked);
                    together = free;
                }
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming a batch failed; claiming its URLs one by one");
                    break;
                }
            }
        }
        alone.append(&mut together);
        let claimed = futures::future::join_all(alone.iter().map(|i| self.claim_one(&chunk[*i], now))).await;
        for (i, claim) in alone.into_iter().zip(claimed) {
            results[i] = Some(claim);
        }
        let unanswered = || Err(Error::Conflict("a claim of the batch was not answered".into()));
        results.into_iter().map(|r| r.unwrap_or_else(unanswered)).collect()
    }

    /// Takes over a URL whose holder's lease has ended, while its job still takes work; the
    /// attempt written is the one seen plus one, so a race with another take-over is lost
    /// cleanly rather than miscounted.
    async fn take_over(
        &self,
        id: &JobId,
        seq: u32,
        seen: &Item,
        places: &[Lease],
        now: Millis,
        until: Millis,
    ) -> Result<Claim, Error> {
        let mut seen = seen.clone();
        for _ in 0..TAKE_OVER_ROUNDS {
            let attempts = number_of(&seen, "attempts").unwrap_or(0);
            let task = task_move(&TAKE_OVER, now, until).condition("attempts = :seen").value(":seen", av_n(attempts));
            let mut items = vec![
                task.update(&self.table, Self::task_key(id, seq))?,
                job_condition(&TAKE_OVER).check(&self.table, Self::job_key(id))?,
            ];
            items.extend(self.place_members(places, now)?);
            let Some(checks) = self.transact(items).await? else {
                return Ok(Claim::Reclaimed { attempt: u32::try_from(attempts + 1).unwrap_or(u32::MAX) });
            };
            if let Some(found) = self.places_found(places, &checks, now).await? {
                match found {
                    Ok(()) => continue,
                    Err(full) => return Ok(Claim::Full(full)),
                }
            }
            let job = match &checks[1] {
                Check::Held => JobState::TakesWork,
                Check::Failed(Some(job)) => JobState::of(status_of::<JobStatus>(job)?),
                Check::Failed(None) => return Err(Error::NotFound),
            };
            seen = match &checks[0] {
                Check::Failed(Some(task)) => task.clone(),
                Check::Failed(None) => return Err(Error::NotFound),
                Check::Held => seen,
            };
            match claim_step_of(id, seq, &seen, job, now)? {
                ClaimStep::Found(claim) => return Ok(claim),
                ClaimStep::Move(m) if m == TAKE_OVER => continue,
                ClaimStep::Move(_) => break,
            }
        }
        // Someone else keeps moving it: look again after a while.
        Ok(Claim::Busy { until: number_of(&seen, "lease_until").unwrap_or(until).max(now + 1_000) })
    }
}

impl DynamoStore {
    /// The members that take the URL's places (one each; a place is never asked for beyond
    /// its limit of at least one, so each is there).
    fn place_members(&self, places: &[Lease], now: Millis) -> Result<Vec<TransactWriteItem>, Error> {
        let takes =
            places.iter().map(|lease| self.place_take(&lease.place, vec![lease.holder.clone()], lease.limit, now));
        takes.filter_map(Result::transpose).collect()
    }

    /// What a claim (task, job, then `places`) whose transaction failed found at its places:
    /// `None` when its task or job condition failed (that decides), `Ok` when every full set
    /// had ended leases to take back (claim again), or the first set that is full.
    async fn places_found(
        &self,
        places: &[Lease],
        checks: &[Check],
        now: Millis,
    ) -> Result<Option<Result<(), Full>>, Error> {
        if places.is_empty() || checks[0..2].iter().any(Check::failed) {
            return Ok(None);
        }
        for (lease, check) in places.iter().zip(&checks[2..]).filter(|(_, check)| check.failed()) {
            if let Err(full) = self.place_was_full(&lease.place, check.item(), now).await? {
                return Ok(Some(Err(full)));
            }
        }
        Ok(Some(Ok(())))
    }

    /// One claim: the task's move, the job's counters and the URL's places together.
    async fn claim_one(&self, request: &ClaimRequest, now: Millis) -> Result<Claim, Error> {
        let (id, seq, places) = (&request.job_id, request.seq, request.places.as_slice());
        let until = lifecycle::lease_end(now, request.lease);
        for _ in 0..PLACE_ROUNDS {
            let mut items =
                self.move_with_job(id, seq, &CLAIM, UrlStatus::Queued, task_move(&CLAIM, now, until), now)?;
            items.extend(self.place_members(places, now)?);
            // A failed condition returns the item as it was, so telling a duplicate from a
            // crash recovery, a cancelled job or a full set of places costs no extra read.
            let Some(checks) = self.transact(items).await? else { return Ok(Claim::Claimed) };
            match self.places_found(places, &checks, now).await? {
                Some(Ok(())) => continue,
                Some(Err(full)) => return Ok(Claim::Full(full)),
                None => return self.claim_found(request, &checks, now, until).await,
            }
        }
        // Ended leases were taken back and the places filled again before this claim.
        let reason = places.first().map_or(WaitReason::HostBusy, |lease| lease.place.wait_reason(false));
        Ok(Claim::Full(Full { reason, paused_until: None }))
    }

    /// What a claim whose task or job condition failed comes to.
    async fn claim_found(
        &self,
        request: &ClaimRequest,
        checks: &[Check],
        now: Millis,
        until: Millis,
    ) -> Result<Claim, Error> {
        let (id, seq) = (&request.job_id, request.seq);
        let job = match &checks[1] {
            Check::Held => JobState::TakesWork,
            Check::Failed(Some(job)) => JobState::of(status_of::<JobStatus>(job)?),
            Check::Failed(None) => return Err(Error::NotFound),
        };
        let task = match &checks[0] {
            Check::Failed(Some(task)) => task.clone(),
            Check::Failed(None) => return Err(Error::NotFound),
            // The task was queued: only the job's condition failed.
            Check::Held => Item::from([("status".to_owned(), av_s(UrlStatus::Queued.as_str()))]),
        };
        match claim_step_of(id, seq, &task, job, now)? {
            ClaimStep::Found(claim) => Ok(claim),
            ClaimStep::Move(m) if m == TAKE_OVER => self.take_over(id, seq, &task, &request.places, now, until).await,
            ClaimStep::Move(_) => Err(Error::Conflict(format!("URL {seq} of job {id} could not be claimed"))),
        }
    }

    /// Makes a task's move that ends its analysis without a result (a retry, a give-back) and
    /// gives its `places` back with it. A move whose condition no longer holds is not made
    /// (the URL moved on); the places are given back all the same.
    async fn move_and_give_places_back(
        &self,
        id: &JobId,
        seq: u32,
        task: Expression,
        places: &[Lease],
    ) -> Result<(), Error> {
        if places.is_empty() {
            return applied(task.update_item(self, Self::task_key(id, seq)).await).map(drop);
        }
        let mut items = vec![task.update(&self.table, Self::task_key(id, seq))?];
        for lease in places {
            items.push(self.place_give(&lease.place, vec![lease.holder.clone()])?);
        }
        self.with_places_back(items, places).await.map(drop)
    }

    /// Writes `items`, which also give `places` back; when they could not be written (the URL
    /// had moved on), the places are given back alone.
    async fn with_places_back(
        &self,
        items: Vec<TransactWriteItem>,
        places: &[Lease],
    ) -> Result<Option<Vec<Check>>, Error> {
        let checks = self.transact(items).await?;
        if checks.is_some() {
            self.give_places_back(places).await?;
        }
        Ok(checks)
    }
}

impl TaskWork for DynamoStore {
    async fn claim(&self, request: &ClaimRequest, now: Millis) -> Result<Claim, Error> {
        self.claim_one(request, now).await
    }

    async fn claim_tasks(&self, claims: &[ClaimRequest], now: Millis) -> Vec<Result<Claim, Error>> {
        let mut results = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(BATCH_TRANSACTION_URLS) {
            results.extend(self.claim_chunk(chunk, now).await);
        }
        results
    }

    async fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        places: &[Lease],
        now: Millis,
    ) -> Result<(), Error> {
        let update = task_move(&RETRY, now, now)
            .set("#error = :error, error_kind = :kind")
            .name("#error", "error")
            .value(":error", av_s(reason))
            .value(":kind", av_s(kind.as_str()));
        // Not applied: finished or cancelled meanwhile, and the retry has nothing left to keep.
        self.move_and_give_places_back(id, seq, update, places).await
    }

    async fn release_claim(&self, id: &JobId, seq: u32, places: &[Lease], now: Millis) -> Result<(), Error> {
        // Not applied: the URL finished meanwhile, and there is no claim left to give back.
        self.move_and_give_places_back(id, seq, task_move(&GIVE_BACK, now, now), places).await
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
        if let Err(err) = self.give_places_back(&places).await {
            tracing::warn!(error = %err, "giving places back failed; they are taken back when their leases end");
        }
        recorded
    }

    async fn cancel_task(&self, id: &JobId, seq: u32, from: UrlStatus, now: Millis) -> Result<bool, Error> {
        let Some(cancel) = lifecycle::cancel_move(from) else { return Ok(false) };
        let items = self.move_with_job(id, seq, &cancel, from, task_move(&cancel, now, now), now)?;
        Ok(self.transact(items).await?.is_none())
    }

    async fn task_urls(&self, keys: &[(JobId, u32)]) -> Result<HashMap<(JobId, u32), String>, Error> {
        #[derive(serde::Deserialize)]
        struct Url {
            job_id: JobId,
            seq: u32,
            url: String,
        }
        let keys = keys.iter().map(|(id, seq)| Self::task_key(id, *seq)).collect();
        let items = self
            .batch_get(keys, |request| {
                request
                    .projection_expression("job_id, #seq, #url")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_names("#url", "url")
            })
            .await?;
        items
            .into_iter()
            .map(|item| from_item::<Url>(item).map(|found| ((found.job_id, found.seq), found.url)))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_or_more_distinct_items_share_a_transaction() {
        let (a, b) = (JobId::generate(), JobId::generate());
        assert!(batchable([(&a, 0), (&a, 1), (&b, 0)].into_iter()));
        assert!(!batchable([(&a, 0)].into_iter()), "one URL gains nothing");
        assert!(!batchable([(&a, 0), (&b, 0), (&a, 0)].into_iter()), "an item twice is refused by DynamoDB");
    }
}
