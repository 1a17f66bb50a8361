//! The SDK configuration every function builds once per container.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::metrics::MetricLine;

/// Loads region and credentials the standard way; `endpoint` points every client at the local
/// emulator when the deployment passes one.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// Counts the AWS requests a client sends, by `Service.Operation`, retries included (each
/// attempt is billed), and the DynamoDB capacity units they consume. Every function attaches
/// one to its clients and reports each invocation's counts in its metrics; tests and the
/// benchmarks read the same counts.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<Mutex<Counts>>);

/// What a [`RequestCounter`] has seen since it was last reset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub requests: BTreeMap<String, u64>,
    /// DynamoDB write and read capacity units, as DynamoDB reports them (transactions cost
    /// double, items are billed per started KB on writes and 4 KB on reads).
    pub write_units: f64,
    pub read_units: f64,
    /// Where the write units went: `<Operation>` for the table's part of each operation,
    /// `Index.<name>` for each secondary index's (a transaction bills its items double, not
    /// its indexes).
    pub write_units_by: BTreeMap<String, f64>,
}

impl RequestCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts().requests
    }

    pub fn counts(&self) -> Counts {
        self.0.lock().map(|counts| counts.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut counts) = self.0.lock() {
            *counts = Counts::default();
        }
    }

    /// The counts since the last call, which starts a new count: one invocation's requests
    /// (a function handles one invocation at a time).
    pub fn take(&self) -> Counts {
        self.0.lock().map(|mut counts| std::mem::take(&mut *counts)).unwrap_or_default()
    }

    /// Adds one invocation's counts to its EMF line: `Requests.<Service>.<Operation>`,
    /// `Requests` in all, and the DynamoDB capacity units.
    pub fn add_to(&self, line: &mut MetricLine) {
        let counts = self.take();
        line.count("Requests", counts.requests.values().sum());
        for (operation, count) in counts.requests {
            line.count(format!("Requests.{operation}"), count);
        }
        line.units("DynamoDB.WriteUnits", counts.write_units);
        for (part, units) in counts.write_units_by {
            line.units(format!("DynamoDB.WriteUnits.{part}"), units);
        }
        line.units("DynamoDB.ReadUnits", counts.read_units);
    }

    /// Writes one invocation's counts as an EMF line of `function` (with `Invocations` 1, so
    /// that requests per invocation can be read from the metrics alone).
    pub fn emit(&self, function: &'static str) {
        self.emit_with(MetricLine::new("speedbatch").dimension("Function", function));
    }

    /// Writes `line` (a function's own metrics of the invocation) with the invocation's counts:
    /// one line per invocation, however many metrics it carries (each line is logged bytes).
    pub fn emit_with(&self, mut line: MetricLine) {
        line.count("Invocations", 1);
        self.add_to(&mut line);
        println!("{}", line.render(domain::time::now_millis()));
    }

    pub fn dynamodb(&self, sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(self.clone()).build(),
        )
    }

    pub fn sqs(&self, sdk: &SdkConfig) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(sdk).interceptor(self.clone()).build())
    }

    pub fn eventbridge(&self, sdk: &SdkConfig) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk).interceptor(self.clone()).build(),
        )
    }

    /// Path-style addressing on the emulator (`<endpoint>/<bucket>/<key>`), which serves no
    /// per-bucket host names; virtual-hosted on AWS.
    pub fn s3(&self, sdk: &SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).interceptor(self.clone()).build(),
        )
    }

    /// The WebSocket API's `@connections` API at `endpoint` (its stage's URL: the API is per
    /// deployment, so the SDK cannot resolve it from the region).
    pub fn connections(&self, sdk: &SdkConfig, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
                .endpoint_url(endpoint)
                .interceptor(self.clone())
                .build(),
        )
    }

    fn add_units(&self, capacity: &[&ConsumedCapacity], write: bool, operation: &str) {
        let Ok(mut counts) = self.0.lock() else { return };
        for consumed in capacity {
            let total = consumed.capacity_units.unwrap_or(0.0);
            if !write {
                counts.read_units += total;
                continue;
            }
            counts.write_units += total;
            let mut indexes = 0.0;
            for (name, index) in consumed.global_secondary_indexes.iter().flatten() {
                let units = index.capacity_units.unwrap_or(0.0);
                indexes += units;
                *counts.write_units_by.entry(format!("Index.{name}")).or_default() += units;
            }
            let table = consumed.table.as_ref().and_then(|t| t.capacity_units).unwrap_or(total - indexes);
            *counts.write_units_by.entry(operation.to_owned()).or_default() += table;
        }
    }
}

/// Runs `$body` with `$typed` bound to `$value` as the first listed type it downcasts to,
/// and `$write` to that type's flag.
macro_rules! downcast_any {
    ($value:expr, $method:ident, |$typed:ident, $write:ident| $body:expr; $($type:ty => $writes:literal),+ $(,)?) => {
        $(if let Some($typed) = $value.$method::<$type>() {
            let $write: bool = $writes;
            $body;
        } else)+ {}
    };
}
impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    /// Asks DynamoDB for the capacity each request consumed (free, and the only exact
    /// figure: item sizes and transactions' double price are DynamoDB's to apply).
    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation as op;
        let input = context.input_mut();
        downcast_any!(input, downcast_mut, |typed, _write| {
            // Per index too: the write units' breakdown is how a change that saves them is found.
            typed.return_consumed_capacity.get_or_insert(ReturnConsumedCapacity::Indexes);
        };
            op::put_item::PutItemInput => true, op::update_item::UpdateItemInput => true,
            op::delete_item::DeleteItemInput => true, op::transact_write_items::TransactWriteItemsInput => true,
            op::batch_write_item::BatchWriteItemInput => true, op::get_item::GetItemInput => false,
            op::query::QueryInput => false, op::batch_get_item::BatchGetItemInput => false,
        );
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation =
            cfg.load::<Metadata>().map_or_else(|| "unknown".to_owned(), |m| format!("{}.{}", m.service(), m.name()));
        if let Ok(mut counts) = self.0.lock() {
            *counts.requests.entry(operation).or_default() += 1;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation as op;
        let Ok(output) = context.output_or_error() else { return Ok(()) };
        let operation = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        // A transaction cancelled by a failed condition is billed too, but DynamoDB returns
        // no capacity with the error: those writes go uncounted.
        downcast_any!(output, downcast_ref, |typed, write| {
            self.add_units(&IntoIterator::into_iter(typed.consumed_capacity()).collect::<Vec<_>>(), write, operation)
        };
            op::put_item::PutItemOutput => true, op::update_item::UpdateItemOutput => true,
            op::delete_item::DeleteItemOutput => true, op::transact_write_items::TransactWriteItemsOutput => true,
            op::batch_write_item::BatchWriteItemOutput => true, op::get_item::GetItemOutput => false,
            op::query::QueryOutput => false, op::batch_get_item::BatchGetItemOutput => false,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocations_counts_go_to_its_metric_line_and_start_again_at_zero() {
        let counter = RequestCounter::default();
        {
            let mut counts = counter.0.lock().unwrap();
            counts.requests.insert("DynamoDB.TransactWriteItems".into(), 2);
            counts.requests.insert("SQS.SendMessageBatch".into(), 1);
            counts.write_units = 12.5;
        }
        let mut line = MetricLine::new("speedbatch");
        counter.add_to(&mut line);
        let line: serde_json::Value = serde_json::from_str(&line.render(0)).unwrap();
        assert_eq!(line["Requests"], 3.0);
        assert_eq!(line["Requests.DynamoDB.TransactWriteItems"], 2.0);
        assert_eq!(line["Requests.SQS.SendMessageBatch"], 1.0);
        assert_eq!(line["DynamoDB.WriteUnits"], 12.5);
        assert!(line.get("DynamoDB.ReadUnits").is_none(), "no reads, no metric");
        assert_eq!(counter.counts(), Counts::default(), "the next invocation starts from zero");
    }

    #[test]
    fn write_units_are_split_between_the_table_by_operation_and_each_index() {
        use aws_sdk_dynamodb::types::Capacity;
        let counter = RequestCounter::default();
        let transaction = ConsumedCapacity::builder()
            .capacity_units(9.0)
            .table(Capacity::builder().capacity_units(8.0).build())
            .global_secondary_indexes("by_url_history", Capacity::builder().capacity_units(1.0).build())
            .build();
        counter.add_units(&[&transaction], true, "TransactWriteItems");
        // No per-index figures (an older emulator): the whole charge is the table's.
        counter.add_units(&[&ConsumedCapacity::builder().capacity_units(2.0).build()], true, "UpdateItem");
        counter.add_units(&[&ConsumedCapacity::builder().capacity_units(0.5).build()], false, "GetItem");
        let counts = counter.counts();
        assert_eq!((counts.write_units, counts.read_units), (11.0, 0.5));
        let by: Vec<(&str, f64)> = counts.write_units_by.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(by, [("Index.by_url_history", 1.0), ("TransactWriteItems", 8.0), ("UpdateItem", 2.0)]);
        let mut line = MetricLine::new("speedbatch");
        counter.add_to(&mut line);
        let line: serde_json::Value = serde_json::from_str(&line.render(0)).unwrap();
        assert_eq!(line["DynamoDB.WriteUnits.Index.by_url_history"], 1.0);
        assert_eq!(line["DynamoDB.WriteUnits.TransactWriteItems"], 8.0);
    }
}
