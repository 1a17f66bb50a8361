//! Sets of places ([`domain::places`]), each an item ([`place_key`]) holding `holders`, the
//! string set of the URLs being analysed, and for a host `paused_until`. A batch's places are
//! taken with one conditional update per set for all the URLs asking for it, and given back
//! once per set for all of an invocation's results.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Error;
use domain::places::{self, Full, Lease, Place};
use domain::time::Millis;

use super::items::place_key;
use super::moves::Expression;
use super::{DynamoStore, Item, av_n, number_of, raced};

/// How long an idle set's item is kept (its TTL, renewed by every place taken): longer than
/// any lease or pause.
const PLACES_KEPT_SECONDS: i64 = 86_400;

/// The places several URLs take or give back, by set: their holders, each once (a string set
/// refuses a value twice; two copies of one message may name the same holder), and the
/// strictest limit.
pub(super) fn by_place<'a>(leases: impl IntoIterator<Item = &'a Lease>) -> BTreeMap<&'a Place, (Vec<String>, u32)> {
    let mut sets: BTreeMap<&Place, (Vec<String>, u32)> = BTreeMap::new();
    for lease in leases {
        let entry = sets.entry(&lease.place).or_insert_with(|| (Vec::new(), lease.limit));
        if !entry.0.contains(&lease.holder) {
            entry.0.push(lease.holder.clone());
        }
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

/// The update that takes places for `holders` in a set while it is not paused and has room
/// for all of them under `limit` (the caller asks for no more than `limit`).
fn take(holders: Vec<String>, limit: u32, now: Millis) -> Expression {
    let room = (limit.max(1) as usize).saturating_sub(holders.len());
    Expression::default()
        .add("holders :holders")
        .value(":holders", AttributeValue::Ss(holders))
        .set("expires_at = :expires")
        .value(":expires", av_n(now / 1000 + PLACES_KEPT_SECONDS))
        .condition("(attribute_not_exists(holders) OR size(holders) <= :room)")
        .value(":room", av_n(room))
        .condition("(attribute_not_exists(paused_until) OR paused_until <= :now)")
        .value(":now", av_n(now))
}

impl DynamoStore {
    /// Takes each ask's places, all of a URL's or none: those that could not have them even
    /// were every set empty wait without a write; each set is taken for all its askers at once
    /// ([`Self::take_in`]); an ask that found one set full gives back what it took at the others.
    pub(super) async fn take_places_of(
        &self,
        asks: &[Vec<Lease>],
        now: Millis,
    ) -> Result<Vec<Result<(), Full>>, Error> {
        let mut answers: Vec<Result<(), Full>> = places::beyond_limits(asks.iter().map(Vec::as_slice))
            .into_iter()
            .map(|beyond| beyond.map_or(Ok(()), Err))
            .collect();
        // Each set once for the asks still in the running, its holders in order.
        let sets =
            by_place(asks.iter().zip(&answers).filter(|(_, answer)| answer.is_ok()).flat_map(|(leases, _)| leases));
        let takes = sets.iter().map(|(place, (holders, limit))| self.take_in(place, holders.clone(), *limit, now));
        let taken: Vec<(usize, Full)> = futures::future::join_all(takes).await.into_iter().collect::<Result<_, _>>()?;
        let taken: BTreeMap<&Place, (usize, Full)> = sets.keys().copied().zip(taken).collect();
        // A URL holds a set's place when its holder is among the first the set took.
        let holds = |lease: &Lease| {
            let (count, _) = taken[&lease.place];
            sets[&lease.place].0.iter().position(|holder| *holder == lease.holder).is_some_and(|k| k < count)
        };
        let mut back = Vec::new();
        for (leases, answer) in asks.iter().zip(answers.iter_mut()).filter(|(_, answer)| answer.is_ok()) {
            if let Some(missed) = leases.iter().filter(|lease| !holds(lease)).min_by_key(|lease| &lease.place) {
                *answer = Err(taken[&missed.place].1);
                back.extend(leases.iter().filter(|lease| holds(lease)).cloned());
            }
        }
        self.give_back(&back).await?;
        Ok(answers)
    }

    /// Takes places in one set for `holders`, in order: all of them in one write while there
    /// is room; else, having taken back the places of leases that ended, as many of the first
    /// as there is room for. How many were taken, and what the others found.
    async fn take_in(
        &self,
        place: &Place,
        holders: Vec<String>,
        limit: u32,
        now: Millis,
    ) -> Result<(usize, Full), Error> {
        let busy = Full { reason: place.wait_reason(false), paused_until: None };
        let asked = holders.len();
        let Err(found) = raced(take(holders.clone(), limit, now).update_item(self, key(place)).await)? else {
            return Ok((asked, busy));
        };
        let paused_until = found.as_ref().and_then(|item| number_of(item, "paused_until")).filter(|until| *until > now);
        if paused_until.is_some() {
            return Ok((0, Full { reason: place.wait_reason(true), paused_until }));
        }
        let there = found.as_ref().map(holders_of).unwrap_or_default();
        let ended = places::ended(&there, now);
        if !ended.is_empty() {
            // Idempotent: another batch taking the same places back changes nothing.
            without(ended.clone()).update_item(self, key(place)).await.map_err(|e| Error::store("UpdateItem", e))?;
        }
        let room = (limit.max(1) as usize).saturating_sub(there.len() - ended.len());
        if room == 0 {
            return Ok((0, busy));
        }
        let first: Vec<String> = holders.into_iter().take(room).collect();
        let count = first.len();
        // Another batch may have filled the room meanwhile: then these wait too.
        let taken = raced(take(first, limit, now).update_item(self, key(place)).await)?.is_ok();
        Ok((if taken { count } else { 0 }, busy))
    }

    /// Gives places back on their own, one update per set for all its holders (those not in
    /// it change nothing).
    pub(super) async fn give_back(&self, leases: &[Lease]) -> Result<(), Error> {
        for (place, (holders, _)) in by_place(leases) {
            without(holders).update_item(self, key(place)).await.map_err(|e| Error::store("UpdateItem", e))?;
        }
        Ok(())
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
