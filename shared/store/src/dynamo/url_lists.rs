//! A job's URLs as submitted, [`URLS_PER_LIST`] to an item, written once at submission.
//!
//! A URL's own item is written by its first change — a result, a retry, a cancel, a resend —
//! which creates it where there was none (no item is a queued URL: [`super::moves::task_move`]).
//! So a URL costs its submission a share of its list's write units (fifty typical URLs are
//! about 4 KB: 0.08 units each) instead of an item of its own (one unit), and its result
//! costs what it did. Every read of a job's URLs lays the items it finds over the lists
//! ([`lay_over`]). A job submitted before lists existed has an item for every URL and no list,
//! and reads the same.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use domain::{Error, JobId, JobUrl, Tags, UrlTask};
use serde::{Deserialize, Serialize};

use super::items::job_pk;
use super::{DynamoStore, from_item, to_item};

/// URLs per list: fifty of the longest URLs with ten labels each still fit DynamoDB's 400 KB
/// item, and a list of typical ones is a few KB, read in one unit.
pub(super) const URLS_PER_LIST: u32 = 50;
/// Sorts after a job's item and its report (`JOB…`) and before its URLs' items (`URL#…`).
const LIST_SK_PREFIX: &str = "LIST#";

/// One list of a job's URLs: those from position `number × URLS_PER_LIST` on, in order.
#[derive(Serialize, Deserialize)]
struct ListItem {
    pk: String,
    sk: String,
    urls: Vec<Listed>,
    expires_at: i64,
}

/// One URL as submitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Listed {
    pub(super) url: String,
    #[serde(flatten)]
    pub(super) tags: Tags,
}

fn list_sk(number: u32) -> String {
    format!("{LIST_SK_PREFIX}{number:05}")
}

fn list_number(sk: &str) -> Option<u32> {
    sk.strip_prefix(LIST_SK_PREFIX)?.parse().ok()
}

/// The writes of a new job's lists, in order.
pub(super) fn list_puts(id: &JobId, urls: &[JobUrl], expires_at: i64) -> Result<Vec<WriteRequest>, Error> {
    urls.chunks(URLS_PER_LIST as usize)
        .zip(0u32..)
        .map(|(chunk, number)| {
            let urls = chunk.iter().map(|u| Listed { url: u.url.as_str().to_owned(), tags: u.tags.clone() }).collect();
            let item = ListItem { pk: job_pk(id), sk: list_sk(number), urls, expires_at };
            let put = PutRequest::builder()
                .set_item(Some(to_item(&item)?))
                .build()
                .map_err(|e| Error::store("BatchWriteItem", e))?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect()
}

/// A URL as a read finds it: its item, taking its URL and tags from its list when its first
/// change wrote it; with no item, the listed URL, queued; with neither, no URL of the job.
pub(super) fn lay_over(id: &JobId, seq: u32, item: Option<UrlTask>, listed: Option<Listed>) -> Option<UrlTask> {
    match (item, listed) {
        (Some(task), Some(listed)) if task.url.is_empty() => {
            Some(UrlTask { url: listed.url, tags: listed.tags, ..task })
        }
        (Some(task), _) => Some(task),
        (None, Some(listed)) => Some(UrlTask::listed(id.clone(), seq, listed.url, listed.tags)),
        (None, None) => None,
    }
}

impl DynamoStore {
    /// The listed URLs of job `id` at `seqs` and beside them (whole lists are read), by
    /// position, read consistently: a list written a moment ago is found. A position in no
    /// list (past the job's URLs, or of a job submitted before lists) is absent.
    pub(super) async fn listed(
        &self,
        id: &JobId,
        seqs: impl IntoIterator<Item = u32>,
    ) -> Result<HashMap<u32, Listed>, Error> {
        let numbers: BTreeSet<u32> = seqs.into_iter().map(|seq| seq / URLS_PER_LIST).collect();
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        let keys = numbers.iter().map(|number| Self::key(id, list_sk(*number))).collect();
        let items = self.batch_get(keys, |request| request.consistent_read(true)).await?;
        let mut found = HashMap::with_capacity(items.len() * URLS_PER_LIST as usize);
        for item in items {
            let list: ListItem = from_item(item)?;
            let number =
                list_number(&list.sk).ok_or_else(|| Error::Corrupt(format!("a URL list keyed {:?}", list.sk)))?;
            found.extend((number * URLS_PER_LIST..).zip(list.urls));
        }
        Ok(found)
    }

    /// Job `id`'s URLs at `seqs`, in that order, each its item in `items` (if any) laid over
    /// its listed URL; a position with neither is left out. Lists are read only for positions
    /// with no item or an item without its URL.
    pub(super) async fn tasks_at(
        &self,
        id: &JobId,
        seqs: &[u32],
        mut items: HashMap<u32, UrlTask>,
    ) -> Result<Vec<UrlTask>, Error> {
        let unlisted = seqs.iter().copied().filter(|seq| items.get(seq).is_none_or(|task| task.url.is_empty()));
        let mut listed = self.listed(id, unlisted).await?;
        Ok(seqs.iter().filter_map(|seq| lay_over(id, *seq, items.remove(seq), listed.remove(seq))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(url: &str) -> Listed {
        Listed { url: url.into(), tags: Tags { reference: Some("r".into()), ..Tags::default() } }
    }

    #[test]
    fn lists_sort_between_the_job_and_its_urls() {
        assert_eq!(list_sk(3), "LIST#00003");
        assert_eq!(list_number(&list_sk(19_999)), Some(19_999));
        assert!("JOB#REPORT" < list_sk(0).as_str() && list_sk(19_999) < super::super::items::task_sk(0));
        assert!(list_sk(9) < list_sk(10));
        assert_eq!(super::super::items::MAX_SEQ / URLS_PER_LIST, 19_999, "five digits hold them");
    }

    #[test]
    fn an_item_is_laid_over_its_listed_url() {
        let id = JobId::generate();
        let queued = lay_over(&id, 7, None, Some(listed("https://a.example/"))).unwrap();
        assert_eq!(
            (queued.seq, queued.url.as_str(), queued.status),
            (7, "https://a.example/", domain::UrlStatus::Queued)
        );
        assert_eq!(queued.tags.reference.as_deref(), Some("r"));
        let written = UrlTask {
            url: String::new(),
            tags: Tags::default(),
            status: domain::UrlStatus::Succeeded,
            ..queued.clone()
        };
        let read = lay_over(&id, 7, Some(written), Some(listed("https://a.example/"))).unwrap();
        assert_eq!((read.url.as_str(), read.status), ("https://a.example/", domain::UrlStatus::Succeeded));
        assert_eq!(read.tags, queued.tags, "its tags are the list's");
        let whole = UrlTask { url: "https://old.example/".into(), ..queued.clone() };
        assert_eq!(lay_over(&id, 7, Some(whole.clone()), None), Some(whole), "an item of a job before lists");
        assert_eq!(lay_over(&id, 7, None, None), None);
    }
}
