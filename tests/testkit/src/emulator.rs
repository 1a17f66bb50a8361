//! Per-test AWS resources on ministack: a jobs table created from `template.yaml`'s own
//! definition (so tests exercise the deployed layout), three queues and their dead-letter
//! queues, a callback queue, and an exports bucket, all uniquely named.

use std::path::PathBuf;

use aws::RequestCounter;
use aws::config::QueueUrls;
use aws::exports::S3Exports;
use aws::queue::SqsQueue;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use serde_yaml::Value;
use store::DynamoStore;

pub fn endpoint() -> String {
    std::env::var("SPEEDBATCH_TEST_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub async fn sdk_config() -> SdkConfig {
    let endpoint = endpoint();
    let health = format!("{endpoint}/_ministack/health");
    if let Err(e) = reqwest::get(&health).await.and_then(|r| r.error_for_status()) {
        panic!(
            "this test needs the local AWS emulator, and ministack is not answering at {health} ({e}). \
             Start it with `make ministack` (`make test` and `make up` start it too); the tests that \
             need no emulator run with `make check`."
        );
    }
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .load()
        .await
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A table and queues of its own for one test.
pub struct TestEnv {
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub table: String,
    pub queues: QueueUrls,
    pub dead_letters: QueueUrls,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// Callback deliveries, from the tracker to the callbacks function.
    pub callbacks: String,
}

impl TestEnv {
    pub async fn new() -> TestEnv {
        let sdk = sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let table = unique_name("it-jobs");
        create_table_from_template(&dynamo, &table).await;
        let mut urls = Vec::new();
        for name in
            ["high", "normal", "low", "browser", "high-dlq", "normal-dlq", "low-dlq", "browser-dlq", "callbacks"]
        {
            let output = sqs
                .create_queue()
                .queue_name(unique_name(&format!("it-{name}")))
                .send()
                .await
                .expect("create a test queue");
            urls.push(output.queue_url.expect("queue url"));
        }
        let [high, normal, low, browser, high_dlq, normal_dlq, low_dlq, browser_dlq, callbacks] =
            <[String; 9]>::try_from(urls).expect("nine queues");
        // Path-style, as the functions address the emulator's S3.
        let s3 = RequestCounter::default().s3(&sdk, true);
        let bucket = unique_name("it-exports");
        s3.create_bucket().bucket(&bucket).send().await.expect("create a test bucket");
        TestEnv {
            sdk,
            dynamo,
            sqs,
            s3,
            bucket,
            callbacks,
            table,
            queues: QueueUrls { high, normal, low, browser: Some(browser) },
            dead_letters: QueueUrls { high: high_dlq, normal: normal_dlq, low: low_dlq, browser: Some(browser_dlq) },
        }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), &self.table, 30)
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone())
    }

    pub fn exports(&self) -> S3Exports {
        S3Exports::new(self.s3.clone(), &self.bucket)
    }

    /// A store whose every AWS request `counter` counts.
    pub fn counted_store(&self, counter: &RequestCounter) -> DynamoStore {
        DynamoStore::new(counter.dynamodb(&self.sdk), &self.table, 30)
    }

    /// A queue whose every AWS request `counter` counts.
    pub fn counted_queue(&self, counter: &RequestCounter) -> SqsQueue {
        SqsQueue::new(counter.sqs(&self.sdk))
    }

    /// The ARN ministack gives a queue URL (`…/<account>/<name>`).
    pub fn queue_arn(&self, url: &str) -> String {
        let mut parts = url.rsplit('/');
        let name = parts.next().expect("queue name");
        let account = parts.next().expect("account");
        format!("arn:aws:sqs:us-east-1:{account}:{name}")
    }

    pub async fn cleanup(self) {
        let _ = self.dynamo.delete_table().table_name(&self.table).send().await;
        let (q, d) = (&self.queues, &self.dead_letters);
        for url in [&q.high, &q.normal, &q.low, &d.high, &d.normal, &d.low, &self.callbacks] {
            let _ = self.sqs.delete_queue().queue_url(url).send().await;
        }
        if let Ok(listed) = self.s3.list_objects_v2().bucket(&self.bucket).send().await {
            for object in listed.contents() {
                let _ = self.s3.delete_object().bucket(&self.bucket).set_key(object.key.clone()).send().await;
            }
        }
        let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
    }
}

/// Dead-letters what `queue` holds the way SQS does it, by receiving the messages again and
/// again (visibility 0 makes each receivable at once, and every receive counts), until
/// `dead_letter` holds `target` messages; `Err` with what it holds if that takes over `within`.
pub async fn dead_letter_by_receiving(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    dead_letter: &str,
    target: u64,
    within: std::time::Duration,
) -> Result<u64, String> {
    use aws::queue::TaskQueue;
    let queues = SqsQueue::new(sqs.clone());
    let started = std::time::Instant::now();
    loop {
        let depth = queues.depth(dead_letter).await.map_err(|e| e.to_string())?;
        let held = depth.visible + depth.in_flight + depth.delayed;
        if held >= target {
            return Ok(held);
        }
        if started.elapsed() > within {
            return Err(format!("{held} of {target} messages reached the dead-letter queue within {within:?}"));
        }
        sqs.receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
    }
}

/// A table of its own, created from `template.yaml`'s definition, for tests that need only the
/// store.
pub struct TestTable {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl TestTable {
    pub async fn new() -> TestTable {
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk_config().await);
        let name = unique_name("it-table");
        create_table_from_template(&dynamo, &name).await;
        TestTable { dynamo, name }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), &self.name, 30)
    }

    pub async fn delete(self) {
        let _ = self.dynamo.delete_table().table_name(&self.name).send().await;
    }
}

fn template_table() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).expect("read template.yaml");
    let template: Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    template["Resources"]["JobsTable"]["Properties"].clone()
}

fn key_schema(list: &Value) -> Vec<KeySchemaElement> {
    list.as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().expect("AttributeName"))
                .key_type(KeyType::from(k["KeyType"].as_str().expect("KeyType")))
                .build()
                .expect("key schema element")
        })
        .collect()
}

pub async fn create_table_from_template(client: &aws_sdk_dynamodb::Client, name: &str) {
    let props = template_table();
    let attributes = props["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().expect("AttributeName"))
                .attribute_type(ScalarAttributeType::from(a["AttributeType"].as_str().expect("AttributeType")))
                .build()
                .expect("attribute definition")
        })
        .collect();
    let indexes = props["GlobalSecondaryIndexes"].as_sequence().map(|list| {
        list.iter()
            .map(|g| {
                GlobalSecondaryIndex::builder()
                    .index_name(g["IndexName"].as_str().expect("IndexName"))
                    .set_key_schema(Some(key_schema(&g["KeySchema"])))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(
                                g["Projection"]["ProjectionType"].as_str().expect("ProjectionType"),
                            ))
                            .set_non_key_attributes(g["Projection"]["NonKeyAttributes"].as_sequence().map(|names| {
                                names.iter().map(|n| n.as_str().expect("an attribute name").to_owned()).collect()
                            }))
                            .build(),
                    )
                    .build()
                    .expect("global secondary index")
            })
            .collect()
    });
    let view = props["StreamSpecification"]["StreamViewType"].as_str().expect("StreamViewType");
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema(&props["KeySchema"])))
        .set_global_secondary_indexes(indexes)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .expect("stream"),
        )
        .send()
        .await
        .expect("create the test table");
}
