//! The shared request quota's two homes: one DynamoDB item every analyzer instance shares,
//! and memory for the handler tests. Both apply `domain::quota::decide`, and both pass the
//! cases of `contract`.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
mod dynamo;
mod memory;

pub use dynamo::DynamoQuota;
pub use memory::MemoryQuota;

#[cfg(test)]
mod tests {
    use domain::quota::QuotaLimits;

    use super::MemoryQuota;
    use super::contract::QuotaFixture;

    struct Memory;

    impl QuotaFixture for Memory {
        type Gate = MemoryQuota;

        fn gate(&self, limits: QuotaLimits) -> MemoryQuota {
            MemoryQuota::new(limits)
        }

        async fn finish(self) {}
    }

    crate::quota_contract!(async { Memory });
}
