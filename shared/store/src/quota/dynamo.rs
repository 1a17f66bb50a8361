//! The quota in one DynamoDB item (`pk = QUOTA#<name>`, `sk = QUOTA`): `tat`, `day`, `used`,
//! and per tenant taking places `due#<tenant>` and `weight#<tenant>` (its share).
//!
//! A place is one conditional UpdateItem built from the last state this instance saw: under
//! load that state is right and the write is all it costs; when another instance wrote in
//! between, the failed write returns the item as it is and the decision is made again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use domain::Error;
use domain::quota::{Asker, Decision, Grant, QuotaGate, QuotaLimits, Share, ShareMove, SlotMove, State, Take, decide};
use domain::time::Millis;

use crate::dynamo::expression::Expression;
use crate::dynamo::{Item, av_n, number_of};

/// Rounds of lost races (another instance wrote between our read and write) before giving up.
const MAX_ROUNDS: u32 = 8;
const DUE: &str = "due#";
const WEIGHT: &str = "weight#";

#[derive(Clone, Debug)]
pub struct DynamoQuota {
    client: Client,
    table: String,
    name: String,
    limits: QuotaLimits,
    /// The item as this instance last wrote or read it.
    seen: Arc<Mutex<Option<State>>>,
}

fn number(item: &Item, name: &str) -> i64 {
    number_of(item, name).unwrap_or(0)
}

fn state_of(item: &Item) -> State {
    let shares = item
        .keys()
        .filter_map(|name| {
            let tenant = name.strip_prefix(DUE)?;
            let weight = u32::try_from(number(item, &format!("{WEIGHT}{tenant}"))).unwrap_or(1);
            Some((tenant.to_owned(), Share { due: number(item, name), weight }))
        })
        .collect();
    State {
        tat: number(item, "tat"),
        day: number(item, "day"),
        used: u32::try_from(number(item, "used")).unwrap_or(u32::MAX),
        shares,
    }
}

/// The conditional update that makes `take`, decided on `old` (`None`: no item was seen).
fn update_of(take: &Take, old: Option<&State>, per_day: u32) -> Expression {
    let mut e = Expression::default().name("#day", "day");
    e = match take.slot {
        SlotMove::Advance { now, latest, day, spacing } => e
            .set("tat = tat + :spacing")
            .add("used :one")
            .condition("tat BETWEEN :now AND :latest AND #day = :day AND used < :per_day")
            .value(":spacing", av_n(spacing))
            .value(":one", av_n(1))
            .value(":now", av_n(now))
            .value(":latest", av_n(latest))
            .value(":day", av_n(day))
            .value(":per_day", av_n(per_day)),
        SlotMove::Restart { tat, day, used } => {
            let e = e
                .set("tat = :tat")
                .set("#day = :day")
                .set("used = :used")
                .value(":tat", av_n(tat))
                .value(":day", av_n(day))
                .value(":used", av_n(used));
            match old {
                None => e.condition("attribute_not_exists(pk)"),
                Some(old) => e
                    .condition("tat = :old_tat AND #day = :old_day AND used = :old_used")
                    .value(":old_tat", av_n(old.tat))
                    .value(":old_day", av_n(old.day))
                    .value(":old_used", av_n(old.used)),
            }
        }
    };
    e = e
        .name("#due", &format!("{DUE}{}", take.tenant))
        .name("#weight", &format!("{WEIGHT}{}", take.tenant))
        .set("#weight = :weight")
        .value(":weight", av_n(take.weight));
    e = match take.share {
        ShareMove::Advance { step, now, reach_end } => e
            .set("#due = #due + :step")
            .condition("#due BETWEEN :now AND :reach_end")
            .value(":step", av_n(step))
            .value(":now", av_n(now))
            .value(":reach_end", av_n(reach_end)),
        ShareMove::Start { due, now } => e
            .set("#due = :due")
            .condition("(attribute_not_exists(#due) OR #due < :now)")
            .value(":due", av_n(due))
            .value(":now", av_n(now)),
    };
    for (n, tenant) in take.forget.iter().enumerate() {
        let (due, weight) = (format!("#gonedue{n}"), format!("#goneweight{n}"));
        // Only while it has not started again meanwhile.
        e = e
            .condition(format!("(attribute_not_exists({due}) OR {due} < :now)"))
            .remove(due.clone())
            .remove(weight.clone())
            .name(&due, &format!("{DUE}{tenant}"))
            .name(&weight, &format!("{WEIGHT}{tenant}"));
    }
    e
}

impl DynamoQuota {
    pub fn new(client: Client, table: impl Into<String>, name: impl Into<String>, limits: QuotaLimits) -> Self {
        DynamoQuota { client, table: table.into(), name: name.into(), limits, seen: Arc::default() }
    }

    fn key(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("QUOTA#{}", self.name))),
            ("sk".to_owned(), AttributeValue::S("QUOTA".into())),
        ])
    }

    fn seen(&self) -> Option<State> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn remember(&self, state: Option<State>) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    async fn read(&self) -> Result<Option<State>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::store("GetItem", e))?;
        Ok(output.item.as_ref().map(state_of))
    }

    /// Writes `take` if the item still says what it was decided on: the item after it, or
    /// the item as it is (`None`: there is none).
    async fn take(&self, take: &Take, old: Option<&State>) -> Result<Result<State, Option<State>>, Error> {
        let result = update_of(take, old, self.limits.per_day)
            .update_request(&self.client, &self.table, self.key())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Ok(output.attributes.as_ref().map(state_of).unwrap_or_default())),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(Err(e.item().map(state_of))),
                _ => Err(Error::store("UpdateItem", err)),
            },
        }
    }
}

impl QuotaGate for DynamoQuota {
    async fn acquire(&self, asker: Asker<'_>, now: Millis, max_wait: Duration) -> Result<Grant, Error> {
        // What this instance saw last is right under load; a write says when it is not, and a
        // wait is only ever told from what the table says now.
        let mut known = self.seen();
        let mut fresh = false;
        for _ in 0..MAX_ROUNDS {
            let state = known.clone().unwrap_or_default();
            match decide(&state, &self.limits, &asker, now, max_wait) {
                Decision::Wait(grant) if fresh => {
                    self.remember(known);
                    return Ok(grant);
                }
                Decision::Wait(_) => known = self.read().await?,
                Decision::Take(take) => match self.take(&take, known.as_ref()).await? {
                    Ok(after) => {
                        // Advancing takes the slot the item held, which `after` is one past.
                        let at = match take.slot {
                            SlotMove::Advance { spacing, .. } => after.tat - spacing,
                            SlotMove::Restart { .. } => take.at,
                        };
                        self.remember(Some(after));
                        return Ok(Grant::Go { at });
                    }
                    Err(actual) => known = actual,
                },
            }
            fresh = true;
        }
        Err(Error::Conflict(format!("quota {}: lost {MAX_ROUNDS} races in a row", self.name)))
    }
}
