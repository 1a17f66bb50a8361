//! `GET /results/{id}?sort=&order=`: a job's URLs in the order of one key over the whole job
//! (up to `MAX_URLS`), a page at a time. A page's cursor is its offset into that order, tied
//! to the sort it was made for.
//!
//! What a sorted page reads, besides the job and its report (as any page):
//! - a finished job whose digest (`domain::compare::Digest`, one S3 object written once by the
//!   exporter, a few hundred bytes a URL) keeps each URL's place: that object, then the page's
//!   URLs by key, `limit` items (one BatchGetItem per 100, eventually consistent). The job's
//!   other URLs are not read: a page of a 10 000-URL job costs 1 GET and 1 to 10 BatchGetItem.
//! - otherwise (a running job; a filter by label or field verdict, which the digest does not keep; no digest,
//!   or one written before it kept places, or gone with the exports): every URL of the job,
//!   through the paged, consistent Query of an unsorted listing (with a filter, DynamoDB still
//!   reads and bills every URL): up to `MAX_URLS` items, one Query call per MB, about 2 500
//!   to 7 500 read units for 10 000 URLs of 1 to 3 KB; then the page's URLs by key as above.
//!   Only a place and a value per URL are kept (`scanned_entries`), never a result, so memory
//!   is one store page of results plus 10 000 small entries. A running job's order is the one
//!   of each request's moment: its URLs move as results arrive.

use std::borrow::Cow;
use std::cmp::Ordering;

use aws::exports::ExportFiles;
use domain::compare::{Digest, DigestRow};
use domain::report::JobReport;
use domain::{EngineKind, Job, TaskFilter, UrlStatus, UrlTask};
use serde::Serialize;
use store::Jobs;

use super::{RowPage, rows_within_bytes};
use crate::cursor;
use crate::error::ApiError;

/// URLs asked of the store at a time while ordering a job from its URLs: no more results are
/// held at once than an unsorted page of the most rows holds.
const SCAN_PAGE: usize = super::MAX_LIMIT;

// The headline numbers are those comparisons judge (`domain::compare::NOISE`), by the names
// `domain::history::Headline` gives them, which the digest keeps.
/// What a listing may be sorted by: the URL, its status, or a headline number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Url,
    Status,
    /// The URL's place in the job: submission order.
    Position,
    Score,
    DesktopScore,
    DeliveryScore,
    DesktopDeliveryScore,
    FcpMs,
    LcpMs,
    SpeedIndexMs,
    TbtMs,
    Cls,
    TtfbMs,
    TotalMs,
    PageBytes,
    FieldLcpMs,
    FieldInpMs,
    FieldCls,
    FieldFcpMs,
    FieldTtfbMs,
}

impl SortKey {
    pub const ALL: [SortKey; 20] = [
        SortKey::Url,
        SortKey::Status,
        SortKey::Position,
        SortKey::Score,
        SortKey::DesktopScore,
        SortKey::DeliveryScore,
        SortKey::DesktopDeliveryScore,
        SortKey::FcpMs,
        SortKey::LcpMs,
        SortKey::SpeedIndexMs,
        SortKey::TbtMs,
        SortKey::Cls,
        SortKey::TtfbMs,
        SortKey::TotalMs,
        SortKey::PageBytes,
        SortKey::FieldLcpMs,
        SortKey::FieldInpMs,
        SortKey::FieldCls,
        SortKey::FieldFcpMs,
        SortKey::FieldTtfbMs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Url => "url",
            SortKey::Status => "status",
            SortKey::Position => "position",
            SortKey::Score => "score",
            SortKey::DesktopScore => "desktop_score",
            SortKey::DeliveryScore => "delivery_score",
            SortKey::DesktopDeliveryScore => "desktop_delivery_score",
            SortKey::FcpMs => "fcp_ms",
            SortKey::LcpMs => "lcp_ms",
            SortKey::SpeedIndexMs => "speed_index_ms",
            SortKey::TbtMs => "tbt_ms",
            SortKey::Cls => "cls",
            SortKey::TtfbMs => "ttfb_ms",
            SortKey::TotalMs => "total_ms",
            SortKey::PageBytes => "page_bytes",
            SortKey::FieldLcpMs => "field_lcp_ms",
            SortKey::FieldInpMs => "field_inp_ms",
            SortKey::FieldCls => "field_cls",
            SortKey::FieldFcpMs => "field_fcp_ms",
            SortKey::FieldTtfbMs => "field_ttfb_ms",
        }
    }

    /// The key the job's engine does give instead of this one, when it cannot give this one.
    /// `score` is only ever the performance score, as everywhere else in the API (history,
    /// comparisons, analytics, budgets): the http engine's number is its `delivery_score`.
    fn instead_for(self, engine: EngineKind) -> Option<SortKey> {
        match (self, engine.scores_performance()) {
            (SortKey::Score, false) => Some(SortKey::DeliveryScore),
            (SortKey::DesktopScore, false) => Some(SortKey::DesktopDeliveryScore),
            (SortKey::DeliveryScore, true) => Some(SortKey::Score),
            (SortKey::DesktopDeliveryScore, true) => Some(SortKey::DesktopScore),
            _ => None,
        }
    }
}

impl std::str::FromStr for SortKey {
    type Err = String;

    fn from_str(text: &str) -> Result<SortKey, String> {
        SortKey::ALL.into_iter().find(|key| key.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = SortKey::ALL.iter().map(|key| key.as_str()).collect();
            format!("{text:?} is not one of {}", names.join(", "))
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

impl SortOrder {
    fn as_str(self) -> &'static str {
        match self {
            SortOrder::Asc => "asc",
            SortOrder::Desc => "desc",
        }
    }
}

impl std::str::FromStr for SortOrder {
    type Err = String;

    fn from_str(text: &str) -> Result<SortOrder, String> {
        match text {
            "asc" => Ok(SortOrder::Asc),
            "desc" => Ok(SortOrder::Desc),
            other => Err(format!("{other:?} is not one of asc, desc")),
        }
    }
}

/// A listing's order: `key`, then the URL's place in the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub order: SortOrder,
}

impl Sort {
    /// `sort` and `order` as the query gives them; `None` is submission order.
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> Result<Option<Sort>, ApiError> {
        let key = crate::query::choice::<SortKey>("sort", sort)?;
        let order = crate::query::choice::<SortOrder>("order", order)?;
        match (key, order) {
            (Some(key), order) => Ok(Some(Sort { key, order: order.unwrap_or_default() })),
            // Without a key, the order is of the URLs' places: ascending is submission order.
            (None, Some(SortOrder::Asc)) => Ok(None),
            (None, Some(SortOrder::Desc)) => Ok(Some(Sort { key: SortKey::Position, order: SortOrder::Desc })),
            (None, None) => Ok(None),
        }
    }

    /// Refuses a key the job's engine never gives, naming the one it does.
    pub fn check_engine(&self, engine: EngineKind) -> Result<(), ApiError> {
        match self.key.instead_for(engine) {
            None => Ok(()),
            Some(instead) => Err(ApiError::invalid_field(
                "sort",
                format!(
                    "the job ran on the {engine} engine, which gives no {}: sort by {} instead",
                    self.key.as_str(),
                    instead.as_str()
                ),
            )),
        }
    }

    fn cursor(&self, offset: usize) -> String {
        cursor::encode(&format!("{}:{}:{offset}", self.key.as_str(), self.order.as_str()))
    }

    /// Where a page starts: the offset `cursor` holds, which must have been made for this
    /// sort (an offset into another order would skip or repeat URLs).
    pub fn offset(&self, cursor: Option<&str>) -> Result<usize, ApiError> {
        let Some(cursor) = cursor else { return Ok(0) };
        match decode(cursor)? {
            Made::Sorted(sort, offset) if sort == *self => Ok(offset),
            Made::Sorted(sort, _) => Err(ApiError::Malformed(format!(
                "cursor is of a listing sorted by {sort}: pass the sort and order of the page it came from"
            ))),
            Made::Unsorted(_) => Err(ApiError::Malformed(
                "cursor is of a listing in submission order: pass it without sort, or start the sorted listing without a cursor"
                    .into(),
            )),
        }
    }
}

impl std::fmt::Display for Sort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.key.as_str(), self.order.as_str())
    }
}

/// The URL an unsorted listing's `cursor` names, the last of its page.
pub fn submission_cursor(cursor: &str) -> Result<u32, ApiError> {
    match decode(cursor)? {
        Made::Unsorted(seq) => Ok(seq),
        Made::Sorted(sort, _) => Err(ApiError::Malformed(format!(
            "cursor is of a listing sorted by {sort}: pass sort={}&order={} with it",
            sort.key.as_str(),
            sort.order.as_str()
        ))),
    }
}

/// What a `/results` cursor was made for: the last URL of a page in submission order, or the
/// offset of the next page of a sorted listing.
enum Made {
    Unsorted(u32),
    Sorted(Sort, usize),
}

fn decode(cursor: &str) -> Result<Made, ApiError> {
    cursor::decode(cursor, |text| {
        if let Ok(seq) = text.parse::<u32>() {
            return Some(Made::Unsorted(seq));
        }
        let mut parts = text.splitn(3, ':');
        let key = parts.next()?.parse().ok()?;
        let order = parts.next()?.parse().ok()?;
        Some(Made::Sorted(Sort { key, order }, parts.next()?.parse().ok()?))
    })
}

/// One URL's value of the key; `None` when it has none (it failed, has not finished, or its
/// engine does not measure the metric). Only values of one key are ever compared.
#[derive(Debug)]
enum Value<'a> {
    Text(Cow<'a, str>),
    Rank(usize),
    Number(f64),
}

impl Value<'_> {
    fn cmp(&self, other: &Value<'_>) -> Ordering {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            (Value::Rank(a), Value::Rank(b)) => a.cmp(b),
            (Value::Number(a), Value::Number(b)) => a.total_cmp(b),
            _ => Ordering::Equal,
        }
    }

    fn into_owned(self) -> Value<'static> {
        match self {
            Value::Text(text) => Value::Text(Cow::Owned(text.into_owned())),
            Value::Rank(rank) => Value::Rank(rank),
            Value::Number(number) => Value::Number(number),
        }
    }
}

/// A URL's status sorts in the order of its life: queued, processing, then the outcomes.
fn status_rank(status: UrlStatus) -> usize {
    UrlStatus::ALL.iter().position(|s| *s == status).unwrap_or(usize::MAX)
}

/// The key's value in a URL's digest row; a metric only where the URL succeeded (the digest
/// keeps a headline for those alone).
fn value_of(key: SortKey, row: &DigestRow) -> Option<Value<'_>> {
    match key {
        SortKey::Url => Some(Value::Text(Cow::Borrowed(&row.url))),
        SortKey::Status => Some(Value::Rank(status_rank(row.status))),
        SortKey::Position => row.seq.map(|seq| Value::Rank(seq as usize)),
        metric => row.headline.as_ref()?.values.get(metric.as_str()).copied().map(Value::Number),
    }
}

/// The key's value of a URL read from the table, as its digest row would hold it (the
/// exporter's own rule), so both ways of ordering a job agree.
fn value_of_task(key: SortKey, job: &Job, task: &UrlTask) -> Option<Value<'static>> {
    match key {
        SortKey::Url => Some(Value::Text(Cow::Owned(task.url.clone()))),
        SortKey::Status => Some(Value::Rank(status_rank(job.shown_status(task.seq, task.status)))),
        SortKey::Position => Some(Value::Rank(task.seq as usize)),
        metric => {
            let row = Digest::of(std::iter::once(task)).rows.pop()?;
            value_of(metric, &row).map(Value::into_owned)
        }
    }
}

/// Orders `entries` (a URL's value and place): by value in `order`, URLs without one last in
/// either order, ties by place, so the order is total and pages neither overlap nor skip.
fn order_entries(entries: &mut [(Option<Value<'_>>, u32)], order: SortOrder) {
    entries.sort_unstable_by(|(a, a_seq), (b, b_seq)| {
        let by_value = match (a, b) {
            (Some(a), Some(b)) => match order {
                SortOrder::Asc => a.cmp(b),
                SortOrder::Desc => b.cmp(a),
            },
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_value.then(a_seq.cmp(b_seq))
    });
}

/// A finished job's digest, when it has one that keeps places: `None` sends the caller to the
/// job's URLs (no digest yet, one written before places were kept, or one that expired with
/// the job's exports while its URLs are still kept).
async fn digest<E: ExportFiles>(files: &E, job: &Job, report: Option<&JobReport>) -> Result<Option<Digest>, ApiError> {
    let Some(key) = report.and_then(|r| r.digest.as_deref()) else { return Ok(None) };
    let digest = crate::exports::read_digest(files, job, key).await?;
    Ok(digest.filter(|digest| digest.rows.iter().all(|row| row.seq.is_some())))
}

/// Each URL `status` keeps, from the digest: its value and place.
fn digest_entries(digest: &Digest, status: Option<UrlStatus>, key: SortKey) -> Vec<(Option<Value<'_>>, u32)> {
    digest
        .rows
        .iter()
        .filter(|row| status.is_none_or(|status| row.status == status))
        .filter_map(|row| Some((value_of(key, row), row.seq?)))
        .collect()
}

/// Each URL `filter` keeps, from the table: its value and place. Reads every such URL of the
/// job (at most `MAX_URLS` items, a Query page at a time) and keeps only those two of each,
/// so what is held is a place and a number (or the URL) per URL, never its result.
async fn scanned_entries<S: Jobs>(
    store: &S,
    job: &Job,
    filter: &TaskFilter,
    key: SortKey,
) -> Result<Vec<(Option<Value<'static>>, u32)>, ApiError> {
    let total = usize::try_from(job.counters.total).unwrap_or(domain::settings::MAX_URLS);
    let mut entries = Vec::with_capacity(total.min(domain::settings::MAX_URLS));
    let mut after = None;
    loop {
        let page = store.list_tasks(&job.id, &job.stored_filter(filter), SCAN_PAGE, after).await?;
        let shown = page.items.iter().filter(|task| job.shows(filter, task));
        entries.extend(shown.map(|task| (value_of_task(key, job, task), task.seq)));
        match page.next.filter(|next| job.lists_after(filter, *next)) {
            Some(next) => after = Some(next),
            None => return Ok(entries),
        }
    }
}

/// Which part of an order a page is: `limit` URLs from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageAt {
    pub offset: usize,
    pub limit: usize,
}

/// The page `at` of the job's URLs that `filter` keeps, in `sort`'s order, stopping at
/// `PAGE_BYTES`. `report` is the finished job's, whose digest orders the job without reading
/// its URLs.
pub async fn sorted_page<S: Jobs, E: ExportFiles>(
    store: &S,
    files: &E,
    job: &Job,
    report: Option<&JobReport>,
    filter: &TaskFilter,
    sort: Sort,
    at: PageAt,
) -> Result<RowPage, ApiError> {
    let PageAt { offset, limit } = at;
    // The digest keeps no labels or field verdicts: a filter by either orders from the URLs
    // themselves.
    let digest = match (&filter.label, filter.field) {
        (None, None) => digest(files, job, report).await?,
        _ => None,
    };
    let (seqs, total) = {
        let mut entries = match &digest {
            Some(digest) => digest_entries(digest, filter.status, sort.key),
            None => scanned_entries(store, job, filter, sort.key).await?,
        };
        order_entries(&mut entries, sort.order);
        let seqs: Vec<u32> = entries.iter().skip(offset).take(limit).map(|(_, seq)| *seq).collect();
        (seqs, entries.len())
    };
    // Only the page's rows are held while they are read.
    drop(digest);
    // The tasks come in the order asked; a URL deleted meanwhile is passed over.
    let mut tasks = store.get_tasks(&job.id, &seqs).await?.into_iter().peekable();
    let found = seqs
        .iter()
        .enumerate()
        .filter_map(|(place, seq)| tasks.next_if(|task| task.seq == *seq).map(|task| (place, task)));
    let (rows, left_out) = rows_within_bytes(job, found);
    let next = offset.saturating_add(left_out.unwrap_or(seqs.len()));
    Ok(RowPage { rows, next_cursor: (next < total).then(|| sort.cursor(next)) })
}

#[cfg(test)]
mod tests;
