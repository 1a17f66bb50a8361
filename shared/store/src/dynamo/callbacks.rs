//! A job's callback delivery state: one attribute of the job item, written by the callbacks
//! function alone. It leaves `updated_at` alone: that says when the job's work last moved,
//! which the reconciler reads.

use domain::callback::CallbackDelivery;
use domain::{Error, JobId};

use super::moves::Expression;
use super::{DynamoStore, applied, av_n};
use crate::CallbackLog;

impl CallbackLog for DynamoStore {
    async fn record_callback(&self, id: &JobId, delivery: &CallbackDelivery) -> Result<(), Error> {
        let value = serde_dynamo::to_attribute_value(delivery).map_err(|e| Error::Corrupt(e.to_string()))?;
        let update = Expression::default()
            .condition("attribute_exists(pk) AND (attribute_not_exists(callback) OR callback.attempts <= :attempts)")
            .set("callback = :delivery")
            .value(":delivery", value)
            .value(":attempts", av_n(delivery.attempts));
        // A job deleted meanwhile, or a later attempt already there: nothing to record.
        applied(update.update_item(self, Self::job_key(id)).await).map(|_| ())
    }
}
