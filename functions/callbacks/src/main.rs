// The handler future nests the SDK clients' futures (DynamoDB, SQS) and the HTTP client's:
// the default limit is too low to lay it out.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws::notify::Callbacks;
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use callbacks::Deliverer;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let queue_url = config.callback_queue_url.clone().ok_or("CALLBACK_QUEUE_URL is not set")?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = aws::RequestCounter::default();
    let deliverer = Arc::new(Deliverer {
        store: DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        sender: Callbacks::new(config.address_policy())?,
        queue_url,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (deliverer, requests) = (Arc::clone(&deliverer), requests.clone());
        async move {
            let response = deliverer.handle(event.payload).await;
            requests.emit("callbacks");
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}
