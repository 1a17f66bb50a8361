//! A table's stream on the emulator, read as Lambda's event source mapping reads it: every
//! record written since the last read, shard by shard and in order, in the shape of a Lambda
//! DynamoDB event's records. Tests hand them to the tracker as the deployed stack does.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::emulator::endpoint;

pub struct TableStream {
    http: reqwest::Client,
    endpoint: String,
    arn: String,
    /// Each shard read so far, and where its next read starts.
    shards: BTreeMap<String, String>,
}

impl TableStream {
    /// The stream of `table` (a table the tests created, with its stream on), from its start.
    pub async fn of(table: &str) -> TableStream {
        let mut stream = TableStream {
            http: reqwest::Client::new(),
            endpoint: endpoint(),
            arn: String::new(),
            shards: BTreeMap::new(),
        };
        let described = stream.call("DynamoDB_20120810.DescribeTable", json!({ "TableName": table })).await;
        stream.arn = described["Table"]["LatestStreamArn"].as_str().expect("the table has a stream").to_owned();
        stream
    }

    async fn call(&self, target: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(&self.endpoint)
            .header("X-Amz-Target", target)
            .header("Content-Type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "{target}: HTTP {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{target}: {e}: {text}"))
    }

    /// Every record written since the last read.
    pub async fn read(&mut self) -> Vec<Value> {
        let described = self.call("DynamoDBStreams_20120810.DescribeStream", json!({ "StreamArn": self.arn })).await;
        let shards: Vec<String> = described["StreamDescription"]["Shards"]
            .as_array()
            .expect("shards")
            .iter()
            .filter_map(|shard| shard["ShardId"].as_str().map(str::to_owned))
            .collect();
        let mut records = Vec::new();
        for shard in shards {
            let mut iterator = match self.shards.get(&shard) {
                Some(next) => next.clone(),
                None => {
                    let body = json!({"StreamArn": self.arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"});
                    let answer = self.call("DynamoDBStreams_20120810.GetShardIterator", body).await;
                    answer["ShardIterator"].as_str().expect("a shard iterator").to_owned()
                }
            };
            loop {
                let answer =
                    self.call("DynamoDBStreams_20120810.GetRecords", json!({ "ShardIterator": iterator })).await;
                let page = answer["Records"].as_array().cloned().unwrap_or_default();
                if let Some(next) = answer["NextShardIterator"].as_str() {
                    iterator = next.to_owned();
                }
                if page.is_empty() {
                    break;
                }
                records.extend(page.into_iter().map(|mut record| {
                    record["eventSourceARN"] = json!(self.arn);
                    record
                }));
            }
            self.shards.insert(shard, iterator);
        }
        records
    }

    /// The records written since the last read that the tracker's filter for results passes
    /// (`template.yaml`: an unfinished URL, or one with no item yet, moving to `succeeded` or
    /// `failed`), as a Lambda
    /// DynamoDB event.
    pub async fn results_event(&mut self) -> Value {
        let status = |record: &Value, image: &str| record["dynamodb"][image]["status"]["S"].as_str().map(str::to_owned);
        let results: Vec<Value> = self
            .read()
            .await
            .into_iter()
            .filter(|record| {
                let unfinished = match record["eventName"].as_str() {
                    Some("MODIFY") => matches!(status(record, "OldImage").as_deref(), Some("queued" | "processing")),
                    // A URL's first change creates its item.
                    Some("INSERT") => true,
                    _ => false,
                };
                unfinished && matches!(status(record, "NewImage").as_deref(), Some("succeeded" | "failed"))
            })
            .collect();
        json!({ "Records": results })
    }
}
