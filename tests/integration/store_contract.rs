//! The store contract (`store::contract`) on the DynamoDB store: the same cases the in-memory
//! store passes, each on a table of its own created from `template.yaml`.

use store::DynamoStore;
use store::contract::Fixture;
use testkit::emulator::TestTable;

pub struct Dynamo {
    table: TestTable,
    store: DynamoStore,
}

impl Fixture for Dynamo {
    type Store = DynamoStore;

    fn store(&self) -> &DynamoStore {
        &self.store
    }

    async fn finish(self) {
        self.table.delete().await;
    }
}

async fn dynamo() -> Dynamo {
    let table = TestTable::new().await;
    let store = table.store();
    Dynamo { table, store }
}

store::store_contract!(dynamo());
