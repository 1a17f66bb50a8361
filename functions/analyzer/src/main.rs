use std::sync::Arc;

use analyzer::Analyzer;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::engine::HttpEngine;
use shared::net::AddressPolicy;
use shared::queue::SqsQueue;
use shared::store::DynamoStore;
use shared::{Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let analyzer = Arc::new(Analyzer {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk)),
        engine: HttpEngine::new(AddressPolicy::new(config.allow_private_targets))?,
        queues: config.queues.clone(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let analyzer = Arc::clone(&analyzer);
        async move {
            let deadline = event.context.deadline();
            Ok::<SqsBatchResponse, Error>(analyzer.handle(event.payload, deadline).await)
        }
    }))
    .await
}
