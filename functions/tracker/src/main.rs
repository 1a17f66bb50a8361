use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::store::DynamoStore;
use shared::{Config, telemetry};
use tracker::Tracker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let tracker = Arc::new(Tracker {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name, config.retention_days),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let tracker = Arc::clone(&tracker);
        async move { Ok::<DynamoDbEventResponse, Error>(tracker.handle(event.payload).await) }
    }))
    .await
}
