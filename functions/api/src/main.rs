use api::{ApiSettings, AppState};
use shared::net::AddressPolicy;
use shared::queue::SqsQueue;
use shared::store::DynamoStore;
use shared::{Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = shared::aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let policy = AddressPolicy::new(config.allow_private_targets);
    let state = AppState {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk)),
        settings: ApiSettings {
            queues: config.queues.clone(),
            dead_letters: config.dead_letters.clone(),
            policy,
            max_url_timeout_seconds: config.max_url_timeout_seconds,
            http: shared::net::safe_client::safe_client(policy)?,
            psi_available: config.psi.is_some(),
        },
    };
    lambda_http::run(api::app(state)).await
}
