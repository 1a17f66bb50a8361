//! Sets of places ([`domain::places`]), each an item ([`place_key`]) holding `holders`, the
//! string set of the URLs being analysed, and for a host `paused_until`. A place is taken in
//! the claim's transaction, so taking one costs no request of its own while there is room,
//! and given back once per set for all of an invocation's results.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use domain::Error;
use domain::places::{self, Full, Lease, Place};
use domain::time::Millis;

use super::items::place_key;
use super::moves::Expression;
use super::{DynamoStore, Item, av_n, number_of};

/// How long an idle set's item is kept (its TTL, renewed by every place taken): longer than
/// any lease or pause.
const PLACES_KEPT_SECONDS: i64 = 86_400;

/// The places several URLs take or give back, by set: their holders and the strictest limit.
pub(super) fn by_place<'a>(leases: impl IntoIterator<Item = &'a Lease>) -> BTreeMap<&'a Place, (Vec<String>, u32)> {
    let mut sets: BTreeMap<&Place, (Vec<String>, u32)> = BTreeMap::new();
    for lease in leases {
        let entry = sets.entry(&lease.place).or_insert_with(|| (Vec::new(), lease.limit));
        entry.0.push(lease.holder.clone());
        entry.1 = entry.1.min(lease.limit);
    }
    sets
}

fn key(place: &Place) -> Item {
    let (pk, sk) = place_key(place);
    DynamoStore::key_of(&pk, &sk)
}

/// Takes `holders` out of a set (those not in it change nothing).
fn without(holders: Vec<String>) -> Expression {
    Expression::default().remove_from_set("holders :holders").value(":holders", AttributeValue::Ss(holders))
}

fn holders_of(item: &Item) -> Vec<String> {
    match item.get("holders") {
        Some(AttributeValue::Ss(holders)) => holders.clone(),
        _ => Vec::new(),
    }
}

impl DynamoStore {
    /// The member that takes places for `holders` in `place` while it is not paused and has
    /// room for all of them under `limit`; `None` when more are asked for than `limit` allows.
    pub(super) fn place_take(
        &self,
        place: &Place,
        holders: Vec<String>,
        limit: u32,
        now: Millis,
    ) -> Result<Option<TransactWriteItem>, Error> {
        let Some(room) = (limit.max(1) as usize).checked_sub(holders.len()) else { return Ok(None) };
        Expression::default()
            .add("holders :holders")
            .value(":holders", AttributeValue::Ss(holders))
            .set("expires_at = :expires")
            .value(":expires", av_n(now / 1000 + PLACES_KEPT_SECONDS))
            .condition("(attribute_not_exists(holders) OR size(holders) <= :room)")
            .value(":room", av_n(room))
            .condition("(attribute_not_exists(paused_until) OR paused_until <= :now)")
            .value(":now", av_n(now))
            .update(&self.table, key(place))
            .map(Some)
    }

    /// The member that gives the places of `holders` in `place` back.
    pub(super) fn place_give(&self, place: &Place, holders: Vec<String>) -> Result<TransactWriteItem, Error> {
        without(holders).update(&self.table, key(place))
    }

    /// Gives places back on their own, one update per set for all its holders: a result's
    /// places, or a claim's after a transaction that would have given them failed for another
    /// reason (a duplicate result still frees the places this delivery took).
    pub(super) async fn give_places_back(&self, leases: &[Lease]) -> Result<(), Error> {
        for (place, (holders, _)) in by_place(leases) {
            without(holders).update_item(self, key(place)).await.map_err(|e| Error::store("UpdateItem", e))?;
        }
        Ok(())
    }

    /// What a claim that found `place` full as `item` says: `Ok` after taking back the places
    /// of leases that have ended (there may be room now: claim again), or why it is full.
    pub(super) async fn place_was_full(
        &self,
        place: &Place,
        item: Option<&Item>,
        now: Millis,
    ) -> Result<Result<(), Full>, Error> {
        let paused_until = item.and_then(|item| number_of(item, "paused_until")).filter(|until| *until > now);
        let holders = item.map(holders_of).unwrap_or_default();
        let ended = places::ended(&holders, now);
        if paused_until.is_some() || ended.is_empty() {
            return Ok(Err(Full { reason: place.wait_reason(paused_until.is_some()), paused_until }));
        }
        // Idempotent: another claim taking the same places back changes nothing.
        without(ended).update_item(self, key(place)).await.map_err(|e| Error::store("UpdateItem", e))?;
        Ok(Ok(()))
    }

    pub(super) async fn pause(&self, host: &str, until: Millis) -> Result<(), Error> {
        let result = Expression::default()
            .set("paused_until = :until, expires_at = :expires")
            .value(":until", av_n(until))
            .value(":expires", av_n(until / 1000 + PLACES_KEPT_SECONDS))
            .condition("(attribute_not_exists(paused_until) OR paused_until < :until)")
            .update_item(self, key(&Place::Host(host.to_owned())))
            .await;
        // A failed condition: a later pause is already set, which stays.
        super::applied(result).map(drop)
    }
}
