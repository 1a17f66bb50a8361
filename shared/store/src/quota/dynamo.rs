//! The quota in one DynamoDB item (`pk = QUOTA#<name>`, `sk = QUOTA`): `tat`, `day`, `used`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use domain::Error;
use domain::quota::{Decision, Grant, QuotaGate, QuotaLimits, State, decide};
use domain::time::Millis;

/// Rounds of lost races (another instance wrote between our read and write) before giving up.
const MAX_ROUNDS: u32 = 8;

#[derive(Clone, Debug)]
pub struct DynamoQuota {
    client: Client,
    table: String,
    name: String,
    limits: QuotaLimits,
}

fn av_n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn state_of(item: &HashMap<String, AttributeValue>) -> State {
    State {
        tat: number(item, "tat"),
        day: number(item, "day"),
        used: u32::try_from(number(item, "used")).unwrap_or(u32::MAX),
    }
}

/// What a failed conditional update returned: the item as it was (`None`: no item yet).
type Raced = Option<HashMap<String, AttributeValue>>;

impl DynamoQuota {
    pub fn new(client: Client, table: impl Into<String>, name: impl Into<String>, limits: QuotaLimits) -> Self {
        DynamoQuota { client, table: table.into(), name: name.into(), limits }
    }

    fn key(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("QUOTA#{}", self.name))),
            ("sk".to_owned(), AttributeValue::S("QUOTA".into())),
        ])
    }

    fn raced(err: aws_sdk_dynamodb::error::SdkError<UpdateItemError>) -> Result<Raced, Error> {
        match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(e.item().cloned()),
            _ => Err(Error::store("UpdateItem", err)),
        }
    }

    /// Takes the slot at `tat` if the item still says what `decide` assumed: the quota is
    /// busy, the day is `day` and has room, and the slot is within `latest`.
    async fn queue(&self, now: Millis, latest: Millis, day: Millis) -> Result<Result<Millis, Raced>, Error> {
        let spacing = self.limits.spacing_ms();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .update_expression("SET tat = tat + :spacing ADD used :one")
            .condition_expression("tat BETWEEN :now AND :latest AND #day = :day AND used < :per_day")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":spacing", av_n(spacing))
            .expression_attribute_values(":one", av_n(1))
            .expression_attribute_values(":now", av_n(now))
            .expression_attribute_values(":latest", av_n(latest))
            .expression_attribute_values(":day", av_n(day))
            .expression_attribute_values(":per_day", av_n(self.limits.per_day))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Ok(output.attributes.as_ref().map_or(now, |new| number(new, "tat")) - spacing)),
            Err(err) => Ok(Err(Self::raced(err)?)),
        }
    }

    /// Writes `next` if the item is still `old` (or still absent).
    async fn restart(&self, old: Option<&State>, next: &State) -> Result<Result<(), Raced>, Error> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .update_expression("SET tat = :tat, #day = :day, used = :used")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":tat", av_n(next.tat))
            .expression_attribute_values(":day", av_n(next.day))
            .expression_attribute_values(":used", av_n(next.used))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        request = match old {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(old) => request
                .condition_expression("tat = :old_tat AND #day = :old_day AND used = :old_used")
                .expression_attribute_values(":old_tat", av_n(old.tat))
                .expression_attribute_values(":old_day", av_n(old.day))
                .expression_attribute_values(":old_used", av_n(old.used)),
        };
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(err) => Ok(Err(Self::raced(err)?)),
        }
    }
}

impl QuotaGate for DynamoQuota {
    async fn acquire(&self, now: Millis, max_wait: Duration) -> Result<Grant, Error> {
        let latest = now.saturating_add(i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX));
        let day = domain::quota::next_daily_reset(now);
        // Under load the fast path is right; when it is not, the item it returns says why.
        let mut seen = match self.queue(now, latest, day).await? {
            Ok(at) => return Ok(Grant::Go { at }),
            Err(item) => item,
        };
        for _ in 0..MAX_ROUNDS {
            let old = seen.as_ref().map(state_of);
            let decision = decide(&old.unwrap_or_default(), &self.limits, now, max_wait);
            seen = match decision {
                Decision::Wait(grant) => return Ok(grant),
                Decision::Queue => match self.queue(now, latest, day).await? {
                    Ok(at) => return Ok(Grant::Go { at }),
                    Err(item) => item,
                },
                Decision::Restart(next) => match self.restart(old.as_ref(), &next).await? {
                    Ok(()) => return Ok(Grant::Go { at: next.tat - self.limits.spacing_ms() }),
                    Err(item) => item,
                },
            };
        }
        Err(Error::Conflict(format!("quota {}: lost {MAX_ROUNDS} races in a row", self.name)))
    }
}
