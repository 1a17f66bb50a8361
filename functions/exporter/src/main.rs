// The handler future nests the SDK clients' futures (DynamoDB reads, S3 writes) deeply: the
// default limit is too low to lay it out.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws::exports::S3Exports;
use aws::notify::EventBridgePublisher;
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use exporter::Exporter;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let bucket = config.exports_bucket.clone().ok_or("EXPORTS_BUCKET is not set")?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = aws::RequestCounter::default();
    let exporter = Arc::new(Exporter {
        store: DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        files: S3Exports::new(requests.s3(&sdk, config.aws_endpoint.is_some()), bucket),
        events: config.event_bus.as_deref().map(|bus| EventBridgePublisher::new(requests.eventbridge(&sdk), bus)),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        callback_queue: config.callback_queue_url.clone(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (exporter, requests) = (Arc::clone(&exporter), requests.clone());
        async move {
            let response = exporter.handle(event.payload).await;
            requests.emit("exporter");
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}
