//! The browser analyzer: the browser queue's URLs in headless Chromium (the layer's on AWS,
//! `CHROMIUM_PATH` locally), started on the first page and kept for the next; screenshots to
//! the exports bucket.

use analyzer::Analyzer;
use analyzer::screenshots::BucketScreenshots;
use aws::exports::S3Exports;
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use engine::browser::{BrowserEngine, BrowserSettings};
use engine::{EngineSet, HttpEngine};
use lambda_runtime::Error;
use store::{DynamoQuota, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let (Some(chromium), Some(bucket)) = (&config.browser, &config.exports_bucket) else {
        return Err("the browser analyzer needs CHROMIUM_PATH (the browser) and EXPORTS_BUCKET (screenshots)".into());
    };
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    let requests = aws::RequestCounter::default();
    let dynamo = requests.dynamodb(&sdk);
    let crux = analyzer::setup::crux(&config, &sdk, &dynamo)?;
    let files = S3Exports::new(requests.s3(&sdk, config.aws_endpoint.is_some()), bucket);
    let settings =
        BrowserSettings { switches: chromium.switches.clone(), ..BrowserSettings::new(chromium.binary.clone()) };
    let analyzer = Analyzer {
        store: DynamoStore::new(dynamo, &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        engine: EngineSet::<DynamoQuota, _> {
            http: HttpEngine::new(config.address_policy())?,
            psi: None,
            browser: Some(BrowserEngine::new(config.address_policy(), settings, BucketScreenshots { files })),
            crux,
        },
        queues: config.queues.clone(),
        host_concurrency: config.host_concurrency,
    };
    analyzer::serve(analyzer, requests, "browser-analyzer").await
}
