//! The analyzer of the priority queues: the http engine, and PageSpeed Insights and the Chrome
//! UX Report where the deployment has their keys.

use analyzer::{Analyzer, setup};
use aws::queue::SqsQueue;
use aws::{Config, telemetry};
use engine::{EngineSet, HttpEngine, PsiEngine};
use lambda_runtime::Error;
use store::DynamoQuota;
use store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = aws::sdk_config(config.aws_endpoint.as_deref()).await;
    // Every AWS request the function makes is counted and reported with its invocation.
    let requests = aws::RequestCounter::default();
    let dynamo = requests.dynamodb(&sdk);
    let psi = match &config.psi {
        Some(psi) => {
            let quota = DynamoQuota::new(dynamo.clone(), &config.table_name, "psi", psi.quota);
            Some(PsiEngine::new(&psi.endpoint, setup::key(&sdk, &psi.key), quota)?)
        }
        None => None,
    };
    let crux = setup::crux(&config, &sdk, &dynamo)?;
    let analyzer = Analyzer {
        store: DynamoStore::new(dynamo, &config.table_name, config.retention_days),
        queue: SqsQueue::new(requests.sqs(&sdk)),
        engine: EngineSet::<_, analyzer::screenshots::BucketScreenshots<aws::exports::S3Exports>> {
            http: HttpEngine::new(config.address_policy())?,
            psi,
            browser: None,
            crux,
        },
        queues: config.queues.clone(),
        host_concurrency: config.host_concurrency,
    };
    analyzer::serve(analyzer, requests, "analyzer").await
}
