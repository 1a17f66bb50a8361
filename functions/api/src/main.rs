use api::{ApiSettings, AppState};
use aws::RequestCounter;
use aws::exports::S3Exports;
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let bucket = config.exports_bucket.clone().ok_or("EXPORTS_BUCKET is not set")?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let policy = config.address_policy();
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = RequestCounter::default();
    let state = AppState {
        store: DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        exports: S3Exports::new(requests.s3(&sdk, config.aws_endpoint.is_some()), bucket),
        settings: ApiSettings {
            queues: config.queues.clone(),
            dead_letters: config.dead_letters.clone(),
            policy,
            max_url_timeout_seconds: config.max_url_timeout_seconds,
            http: net::safe_client::safe_client(policy)?,
            psi_available: config.psi.is_some(),
            crux_available: config.crux.is_some(),
            tenant_limits: config.tenant_limits,
            ws_url: config.ws_url.clone(),
        },
    };
    let app = api::app(state).layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
        let requests = requests.clone();
        async move {
            let response = next.run(request).await;
            requests.emit("api");
            response
        }
    }));
    lambda_http::run(app).await
}
