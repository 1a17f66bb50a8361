use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EVENT_SOURCE, EventPublisher, Notice};
use domain::Error;
use domain::retry::backoff;
use futures::{StreamExt, TryStreamExt};

/// EventBridge's limit of entries per PutEvents.
const PUT_EVENTS_MAX: usize = 10;
/// PutEvents calls in flight at once.
const PUT_PARALLELISM: usize = 8;
/// Rounds of re-sending entries EventBridge failed before giving up.
const FAILED_ENTRY_RETRIES: u32 = 5;

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgePublisher { client, bus: bus.into() }
    }
}

impl EventBridgePublisher {
    fn entry(&self, notice: &Notice) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(notice.detail_type)
            .resources(&notice.resource)
            .detail(notice.detail.to_string())
            .build()
    }

    /// One PutEvents of at most [`PUT_EVENTS_MAX`] entries, the failed entries sent again.
    async fn put_chunk(&self, mut entries: Vec<PutEventsRequestEntry>) -> Result<(), Error> {
        for round in 0..=FAILED_ENTRY_RETRIES {
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| Error::events("PutEvents", e))?;
            if output.failed_entry_count() == 0 {
                return Ok(());
            }
            // Entries come back in request order; keep only those that failed.
            entries = entries
                .into_iter()
                .zip(output.entries())
                .filter(|(_, result)| result.error_code().is_some())
                .map(|(entry, _)| entry)
                .collect();
            if round == FAILED_ENTRY_RETRIES {
                return Err(Error::Events {
                    operation: "PutEvents",
                    message: format!("{} events still failing after retries", entries.len()),
                });
            }
            tokio::time::sleep(backoff(round)).await;
        }
        Ok(())
    }
}

impl EventPublisher for EventBridgePublisher {
    /// A few calls at a time: a monitor's run over 10 000 URLs and 20 budgets can change
    /// thousands of standings at once, each an event, within the exporter's time.
    async fn publish(&self, notices: &[Notice]) -> Result<(), Error> {
        let chunks: Vec<Vec<PutEventsRequestEntry>> =
            notices.chunks(PUT_EVENTS_MAX).map(|chunk| chunk.iter().map(|n| self.entry(n)).collect()).collect();
        futures::stream::iter(chunks)
            .map(|chunk| self.put_chunk(chunk))
            .buffer_unordered(PUT_PARALLELISM)
            .try_collect::<()>()
            .await
    }
}
