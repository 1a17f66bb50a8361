// The handler future nests the SDK clients' futures deeply (stream, sweep, EventBridge and
// SQS in one state machine): the default limit is too low to lay it out.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use aws::notify::EventBridgePublisher;
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use store::DynamoStore;
use tracker::{Tracker, TrackerEvent, TrackerResponse, TrackerSettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = aws::RequestCounter::default();
    let tracker = Arc::new(Tracker {
        store: DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        events: config.event_bus.as_deref().map(|bus| EventBridgePublisher::new(requests.eventbridge(&sdk), bus)),
        settings: TrackerSettings {
            queues: config.queues.clone(),
            reconcile_after: Duration::from_secs(u64::from(config.reconcile_after_seconds)),
            export_queue: config.export_queue_url.clone(),
            callback_queue: config.callback_queue_url.clone(),
        },
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<TrackerEvent>| {
        let (tracker, requests) = (Arc::clone(&tracker), requests.clone());
        async move {
            let response = tracker.handle_event(event.payload).await;
            requests.emit("tracker");
            Ok::<TrackerResponse, Error>(response)
        }
    }))
    .await
}
