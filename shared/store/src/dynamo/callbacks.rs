//! A callback's delivery state, written by the callbacks function alone: for a job's end, one
//! attribute of the job item (leaving `updated_at` alone: that says when the job's work last
//! moved, which the reconciler reads); for a budget's change, one of the standing it announces.

use domain::budget::StandingRef;
use domain::callback::CallbackDelivery;
use domain::{Error, JobId, Tenant};

use super::items::tenant_pk;
use super::monitors::standing_sk;
use super::moves::Expression;
use super::{DynamoStore, applied, av_n, av_s};
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

    async fn record_budget_callback(
        &self,
        tenant: &Tenant,
        standing: &StandingRef,
        job: &JobId,
        delivery: &CallbackDelivery,
    ) -> Result<(), Error> {
        let value = serde_dynamo::to_attribute_value(delivery).map_err(|e| Error::Corrupt(e.to_string()))?;
        let update = Expression::default()
            .condition(
                "attribute_exists(pk) AND job_id = :job AND (attribute_not_exists(callback) OR callback.attempts <= :attempts)",
            )
            .set("callback = :delivery")
            .value(":delivery", value)
            .value(":job", av_s(job.as_str()))
            .value(":attempts", av_n(delivery.attempts));
        let key = Self::key_of(&tenant_pk(tenant), &standing_sk(&standing.monitor_id, &standing.key()));
        // Gone with its monitor or budget, or changed by a later run: nothing to record.
        applied(update.update_item(self, key).await).map(|_| ())
    }
}
