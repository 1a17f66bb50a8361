//! Drives the handlers the way Lambda would, with ministack underneath.

use std::time::{Duration, SystemTime};

use analyzer::Analyzer;
use api::{ApiSettings, AppState};
use aws::notify::{Callbacks, MemoryPublisher};
use aws::queue::SqsQueue;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::AddressPolicy;
use domain::auth::{generate_key, hash_key};
use domain::{JobId, Tenant};
use engine::HttpEngine;
use serde_json::{Value, json};
use store::DynamoStore;
use store::KeyStore;
use testkit::emulator::TestEnv;
use testkit::table_stream::TableStream;
use tower::ServiceExt;
use tracker::{Tracker, TrackerSettings};

pub struct Harness {
    pub env: TestEnv,
    pub router: axum::Router,
    pub analyzer: Analyzer<DynamoStore, SqsQueue, HttpEngine>,
    pub tracker: Tracker<DynamoStore, SqsQueue, MemoryPublisher>,
    pub exporter: exporter::Exporter<DynamoStore, aws::exports::S3Exports, aws::notify::MemoryPublisher, SqsQueue>,
    pub callbacks: callbacks::Deliverer<DynamoStore, SqsQueue, Callbacks>,
    /// The table's stream: the results the analyzer writes reach the tracker through it.
    pub stream: tokio::sync::Mutex<TableStream>,
}

pub struct Response {
    pub status: StatusCode,
    pub body: Value,
}

impl Harness {
    pub async fn new() -> Harness {
        // Handler logs (captured per test, shown when one fails).
        aws::telemetry::init();
        let env = TestEnv::new().await;
        // Tests target a site on 127.0.0.1, as local development does.
        let policy = AddressPolicy::LOCAL;
        let router = api::app(AppState {
            store: env.store(),
            queue: env.queue(),
            exports: env.exports(),
            settings: ApiSettings {
                queues: env.queues.clone(),
                dead_letters: Some(env.dead_letters.clone()),
                policy,
                max_url_timeout_seconds: 840,
                http: net::safe_client::safe_client(policy).expect("client"),
                psi_available: false,
                crux_available: false,
                tenant_limits: domain::tenancy::Limits::DEFAULT,
                ws_url: None,
            },
        });
        let analyzer = Analyzer {
            store: env.store(),
            queue: env.queue(),
            engine: HttpEngine::new(policy).expect("http engine"),
            queues: env.queues.clone(),
            // Every URL of these tests is on the test's one local site: room for a whole window.
            host_concurrency: domain::politeness::HOST_CONCURRENCY.max,
        };
        let tracker = Tracker {
            store: env.store(),
            queue: env.queue(),
            events: MemoryPublisher::default(),
            settings: TrackerSettings {
                queues: env.queues.clone(),
                reconcile_after: Duration::ZERO,
                export_queue: None,
                callback_queue: Some(env.callbacks.clone()),
            },
        };
        let exporter = exporter::Exporter {
            store: env.store(),
            files: env.exports(),
            events: aws::notify::MemoryPublisher::default(),
            queue: env.queue(),
            callback_queue: Some(env.callbacks.clone()),
        };
        let callbacks = callbacks::Deliverer {
            store: env.store(),
            queue: env.queue(),
            sender: Callbacks::new(policy).expect("callbacks"),
            queue_url: env.callbacks.clone(),
        };
        let stream = tokio::sync::Mutex::new(TableStream::of(&env.table).await);
        Harness { env, router, analyzer, tracker, exporter, callbacks, stream }
    }

    /// A fresh API key for `tenant`.
    pub async fn key_for(&self, tenant: &str) -> String {
        let key = generate_key();
        self.env.store().put_key_hash(&hash_key(&key), &Tenant(tenant.into())).await.expect("store key");
        key
    }

    pub async fn request(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    /// Submits a job that must be accepted, and returns its id.
    pub async fn start(&self, key: &str, body: Value) -> JobId {
        let created = self.request("POST", &domain::paths::endpoint("/start"), Some(key), Some(body)).await;
        assert_eq!(created.status, 201, "{}", created.body);
        Self::job_id(&created.body)
    }

    pub async fn send(&self, request: Request<Body>) -> Response {
        let (status, _, bytes) = self.send_raw(request).await;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        Response { status, body }
    }

    /// The response as it is, for bodies that are not JSON.
    pub async fn send_raw(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("router never fails");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// Receives up to `max` messages from `queue_url` as one Lambda SQS event.
    pub async fn receive(&self, queue_url: &str, max: i32) -> SqsEvent {
        let output = self
            .env
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(max)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let arn = self.env.queue_arn(queue_url);
        let records: Vec<Value> = output
            .messages()
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).expect("SQS event shape")
    }

    /// Hands an SQS event to the analyzer and deletes what it did not report as failed, as
    /// Lambda's event source mapping does.
    pub async fn analyze(&self, queue_url: &str, event: SqsEvent) -> SqsBatchResponse {
        let deadline = SystemTime::now() + Duration::from_secs(900);
        let response = self.analyzer.handle(event.clone(), deadline).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for record in &event.records {
            if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
                self.env
                    .sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(record.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        self.count_results().await;
        response
    }

    /// Hands the tracker the results written since the last call, from the table's stream, as
    /// the deployed tracker's event source mapping does.
    pub async fn count_results(&self) {
        let event = self.stream.lock().await.results_event().await;
        if event["Records"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        let event: StreamEvent = serde_json::from_value(event).expect("stream event shape");
        let response = self.tracker.handle(event).await;
        assert!(response.batch_item_failures.is_empty(), "the tracker failed to count: {response:?}");
    }

    /// Feeds analyzer batches until the queue stays empty.
    pub async fn drain(&self, queue_url: &str) {
        for _ in 0..200 {
            let event = self.receive(queue_url, 10).await;
            if event.records.is_empty() {
                return;
            }
            self.analyze(queue_url, event).await;
        }
        panic!("queue {queue_url} never drained");
    }

    /// The job item as it is now, as a stream MODIFY record would carry it.
    pub async fn job_item(&self, id: &str) -> std::collections::HashMap<String, AttributeValue> {
        self.env
            .dynamo
            .get_item()
            .table_name(&self.env.table)
            .key("pk", AttributeValue::S(format!("JOB#{id}")))
            .key("sk", AttributeValue::S("JOB".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get job item")
            .item
            .expect("job item exists")
    }

    /// Hands the tracker a stream record of the job's current item, as DynamoDB Streams would.
    pub async fn track(&self, id: &str) -> DynamoDbEventResponse {
        let item = self.job_item(id).await;
        self.track_image(id, item).await
    }

    /// Hands the tracker a stream record carrying `item` as its new image.
    pub async fn track_image(
        &self,
        id: &str,
        item: std::collections::HashMap<String, AttributeValue>,
    ) -> DynamoDbEventResponse {
        self.track_change(id, None, item).await
    }

    /// Hands the tracker a stream record of a change from `old` to `new`.
    pub async fn track_change(
        &self,
        id: &str,
        old: Option<std::collections::HashMap<String, AttributeValue>>,
        new: std::collections::HashMap<String, AttributeValue>,
    ) -> DynamoDbEventResponse {
        let image = |item: std::collections::HashMap<String, AttributeValue>| {
            let image: serde_dynamo::Item = item.into();
            serde_json::to_value(&image).expect("image JSON")
        };
        let mut event = json!({"Records": [{
            "eventID": "1",
            "eventName": "MODIFY",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1764000000.0,
                "Keys": {"pk": {"S": format!("JOB#{id}")}, "sk": {"S": "JOB"}},
                "NewImage": image(new),
                "SequenceNumber": "100",
                "SizeBytes": 100,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        }]});
        if let Some(old) = old {
            event["Records"][0]["dynamodb"]["OldImage"] = image(old);
        }
        let event: StreamEvent = serde_json::from_value(event).expect("stream event shape");
        self.tracker.handle(event).await
    }

    pub fn job_id(body: &Value) -> JobId {
        JobId::parse(body["batch_job_id"].as_str().expect("batch_job_id")).expect("a job id")
    }
}
