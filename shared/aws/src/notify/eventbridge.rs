use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EVENT_SOURCE, EventPublisher, Notice};
use domain::Error;
use domain::retry::backoff;

/// EventBridge's limit of entries per PutEvents.
const PUT_EVENTS_MAX: usize = 10;
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

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, notices: &[Notice]) -> Result<(), Error> {
        for chunk in notices.chunks(PUT_EVENTS_MAX) {
            let mut entries = chunk
                .iter()
                .map(|notice| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENT_SOURCE)
                        .detail_type(notice.detail_type)
                        .resources(&notice.resource)
                        .detail(notice.detail.to_string())
                        .build()
                })
                .collect::<Vec<_>>();
            for round in 0..=FAILED_ENTRY_RETRIES {
                let output = self
                    .client
                    .put_events()
                    .set_entries(Some(entries.clone()))
                    .send()
                    .await
                    .map_err(|e| Error::events("PutEvents", e))?;
                if output.failed_entry_count() == 0 {
                    break;
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
        }
        Ok(())
    }
}
