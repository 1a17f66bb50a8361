//! The exporter writes what is kept of a finished job, once: its whole-job exports (CSV and
//! JSON Lines, to the exports bucket), its digest for comparisons (each URL's outcome and
//! headline numbers, beside the exports), its share of its tenant's daily analytics, for a
//! monitor's run the budgets it changed (kept, announced on the bus and called back), and its
//! report (the complete summary and where the files are, beside the job). The tracker hands it each job that finishes through a queue, so a
//! 10 000-URL job's reading and writing holds up no stream and no request: the API then
//! answers a finished job's pages from the report and its whole-job downloads with a link.
//!
//! Each message is one job; a failure reports that message alone, for the queue to deliver
//! again (and to its dead-letter queue after the template's receives). Writing twice is
//! harmless: the same files and the same report.

use aws::exports::ExportFiles;
use aws::metrics::MetricLine;
use aws::notify::{EventPublisher, Notice};
use aws::queue::Outbox;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::analytics::tally_by_day;
use domain::budget;
use domain::callback::CallbackRequest;
use domain::compare::Digest;
use domain::monitor::MonitorId;
use domain::report::{ExportFile, ExportFormat, ExportRequest, JobReport, ResultRow, summarize};
use domain::time::{Millis, now_millis};
use domain::{Error, Job, JobId, UrlTask};
use store::{JobTallies, Jobs, Monitors, Reports};
use tracing::Instrument;

/// URLs read per Query (DynamoDB returns at most 1 MB per page whatever the limit).
const READ_PAGE: usize = 1_000;

pub struct Exporter<S, F, P, Q> {
    pub store: S,
    pub files: F,
    /// Where a monitor's budgets that change state with a run are announced.
    pub events: P,
    pub queue: Q,
    /// The callbacks function's queue, where a budget's change is handed to be called back
    /// when the monitor names a callback; `None` calls nobody back (and says so in the log).
    pub callback_queue: Option<String>,
}

/// What one message came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exported {
    /// Files and report written: URLs and bytes of every file together.
    Written { urls: u64, bytes: u64 },
    /// The report was there already: an earlier delivery wrote it.
    AlreadyWritten,
    /// The job is gone (deleted) or has not finished (a message sent by hand): nothing to do.
    Skipped(&'static str),
}

impl<S, F, P, Q> Exporter<S, F, P, Q>
where
    S: Jobs + Reports + Monitors,
    F: ExportFiles,
    P: EventPublisher,
    Q: Outbox,
{
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut line = MetricLine::new("speedbatch").dimension("Function", "exporter");
        let (mut written, mut bytes, mut failed) = (0, 0, 0);
        for record in &event.records {
            match self.handle_record(record).await {
                Ok(Exported::Written { bytes: b, .. }) => {
                    written += 1;
                    bytes += b;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, message_id = record.message_id.as_deref(), "export failed; will be retried");
                    failed += 1;
                    response.add_failure(record.message_id.clone().unwrap_or_default());
                }
            }
        }
        line.count("JobsExported", written);
        line.count("ExportBytes", bytes);
        line.count("ExportsFailed", failed);
        println!("{}", line.render(now_millis()));
        response
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<Exported, Error> {
        let body = record.body.as_deref().unwrap_or_default();
        let request: ExportRequest = match serde_json::from_str(body) {
            Ok(request) => request,
            // Retrying cannot make it readable; it goes to the dead-letter queue to be seen.
            Err(err) => return Err(Error::Corrupt(format!("unreadable export request: {err}"))),
        };
        let span = tracing::info_span!("job", job_id = %request.batch_job_id);
        let outcome = self.export(&request.batch_job_id, now_millis()).instrument(span.clone()).await?;
        span.in_scope(|| tracing::info!(?outcome, "export"));
        Ok(outcome)
    }

    /// Writes job `id`'s files and report, unless they are written already.
    pub async fn export(&self, id: &JobId, now: Millis) -> Result<Exported, Error> {
        let Some(job) = self.store.get_job(id).await? else { return Ok(Exported::Skipped("no such job")) };
        if !job.status.is_finished() {
            return Ok(Exported::Skipped("the job has not finished"));
        }
        if self.store.get_report(id).await?.is_some() {
            return Ok(Exported::AlreadyWritten);
        }
        let tasks = self.all_tasks(id).await?;
        // Before the report: an export that fails after this runs again, and announces again
        // what this run changed.
        if let Some(monitor) = &job.monitor_id {
            self.check_budgets(&job, monitor, &tasks, now).await?;
        }
        let summary = summarize(&tasks);
        let digest = serde_json::to_vec(&Digest::of(&tasks)).map_err(|e| Error::Corrupt(e.to_string()))?;
        let tallies =
            JobTallies { tenant: job.tenant.clone(), days: tally_by_day(&tasks, job.finished_at.unwrap_or(now)) };
        let urls = tasks.len() as u64;
        let rows: Vec<ResultRow> = tasks.into_iter().map(|task| ResultRow::new(task, &job)).collect();
        let mut exports = Vec::with_capacity(ExportFormat::ALL.len());
        for format in ExportFormat::ALL {
            let body = format.render(&rows).into_bytes();
            let file = ExportFile { format, key: format.object_key(id), bytes: body.len() as u64, rows: urls };
            self.files.put(&file.key, body, format.content_type()).await?;
            exports.push(file);
        }
        let digest_key = Digest::object_key(id);
        let bytes = exports.iter().map(|file| file.bytes).sum::<u64>() + digest.len() as u64;
        self.files.put(&digest_key, digest, "application/json").await?;
        // Last: a report names only files that are there.
        let report = JobReport { summary, exports, digest: Some(digest_key), written_at: now };
        if !self.store.put_report(id, &report, Some(&tallies)).await? {
            return Ok(Exported::AlreadyWritten);
        }
        Ok(Exported::Written { urls, bytes })
    }

    /// A monitor's run against the monitor's budgets: each (URL, budget) whose state changed
    /// is kept, then announced (`Budget Breached`, `Budget Recovered`) on the bus and to the
    /// monitor's callback.
    async fn check_budgets(&self, job: &Job, monitor: &MonitorId, tasks: &[UrlTask], now: Millis) -> Result<(), Error> {
        let Some(monitor) = self.store.get_monitor(&job.tenant, monitor).await? else { return Ok(()) };
        if monitor.budgets.is_empty() {
            return Ok(());
        }
        let kept = self.store.budget_standings(&job.tenant, &monitor.id).await?;
        let evaluation = budget::evaluate(budget::check_run(&monitor.budgets, tasks), &kept, &job.id, now);
        // Kept before announced: a callback's delivery, recorded on its standing, is never
        // overwritten by the standing's own write, and an export interrupted after this finds
        // this run's changes by their job and announces them again.
        self.store.put_budget_standings(&job.tenant, &monitor.id, &evaluation.writes).await?;
        let notices: Vec<Notice> = evaluation
            .changes
            .iter()
            .map(|(change, standing)| Notice::budget(*change, &monitor.id, &job.id, standing))
            .collect();
        self.events.publish(&notices).await?;
        let callbacks: Vec<CallbackRequest> = notices.iter().filter_map(|n| n.callback(job, now)).collect();
        match (&self.callback_queue, callbacks.is_empty()) {
            (_, true) => {}
            (Some(queue), false) => self.queue.post(queue, &callbacks).await?,
            (None, false) => tracing::warn!("the monitor names a callback but this deployment has no callback queue"),
        }
        tracing::info!(
            monitor_id = %monitor.id,
            kept = evaluation.writes.len(),
            announced = notices.len(),
            called_back = callbacks.len(),
            "budgets"
        );
        Ok(())
    }

    async fn all_tasks(&self, id: &JobId) -> Result<Vec<UrlTask>, Error> {
        let mut tasks = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_tasks(id, &domain::TaskFilter::default(), READ_PAGE, after).await?;
            tasks.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(tasks),
            }
        }
    }
}

#[cfg(test)]
mod tests;
