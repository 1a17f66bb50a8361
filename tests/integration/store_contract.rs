//! The store contract (`store::contract`) on the DynamoDB store: the same cases the in-memory
//! store passes, each on a table of its own created from `template.yaml`. Results reach the
//! job's counters as they do when deployed: from the table's stream, through the tracker.

use aws::notify::MemoryPublisher;
use aws::queue::MemoryQueue;
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use store::DynamoStore;
use store::contract::Fixture;
use testkit::emulator::TestTable;
use testkit::table_stream::TableStream;
use tracker::{Tracker, TrackerSettings};

pub struct Dynamo {
    table: TestTable,
    store: DynamoStore,
    stream: tokio::sync::Mutex<TableStream>,
    tracker: Tracker<DynamoStore, MemoryQueue, MemoryPublisher>,
}

impl Fixture for Dynamo {
    type Store = DynamoStore;

    fn store(&self) -> &DynamoStore {
        &self.store
    }

    async fn count_results(&self) {
        let event = self.stream.lock().await.results_event().await;
        let event: StreamEvent = serde_json::from_value(event).expect("stream event shape");
        let response = self.tracker.handle(event).await;
        assert!(response.batch_item_failures.is_empty(), "the tracker failed to count: {response:?}");
    }

    async fn finish(self) {
        self.table.delete().await;
    }
}

async fn dynamo() -> Dynamo {
    let table = TestTable::new().await;
    let store = table.store();
    let stream = tokio::sync::Mutex::new(TableStream::of(&table.name).await);
    let queues =
        aws::config::QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None };
    let settings = TrackerSettings {
        queues,
        reconcile_after: std::time::Duration::ZERO,
        export_queue: None,
        callback_queue: None,
    };
    let tracker =
        Tracker { store: table.store(), queue: MemoryQueue::new(), events: MemoryPublisher::default(), settings };
    Dynamo { table, store, stream, tracker }
}

store::store_contract!(dynamo());
