use aws::connections::ApiGatewayConnections;
use aws::{Config, telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use live::{Live, LiveEvent, LiveResponse};
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let endpoint = config.ws_management_url.clone().ok_or("WS_MANAGEMENT_URL is not set")?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = aws::RequestCounter::default();
    let live = std::sync::Arc::new(Live::new(
        DynamoStore::new(requests.dynamodb(&sdk), &config.table_name, config.retention_days),
        ApiGatewayConnections::new(requests.connections(&sdk, &endpoint)),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (live, requests) = (std::sync::Arc::clone(&live), requests.clone());
        async move {
            let response = live.handle(LiveEvent::parse(event.payload)?).await;
            requests.emit("live");
            Ok::<LiveResponse, Error>(response)
        }
    }))
    .await
}
