use std::sync::Arc;

use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use scheduler::{Scheduler, SchedulerEvent, SchedulerResponse, SchedulerSettings};
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let requests = aws::RequestCounter::default();
    let run_queue = config.monitor_run_queue_url.clone().ok_or("MONITOR_RUN_QUEUE_URL is not set")?;
    let policy = config.address_policy();
    let scheduler = Arc::new(Scheduler {
        store: DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        settings: SchedulerSettings {
            deployment: submit::Deployment {
                queues: config.queues.clone(),
                tenant_limits: config.tenant_limits,
                max_url_timeout_seconds: config.max_url_timeout_seconds,
            },
            run_queue,
            policy,
            http: net::safe_client::safe_client(policy)?,
        },
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SchedulerEvent>| {
        let (scheduler, requests) = (Arc::clone(&scheduler), requests.clone());
        async move {
            let response = scheduler.handle(event.payload).await;
            requests.emit("scheduler");
            Ok::<SchedulerResponse, Error>(response?)
        }
    }))
    .await
}
