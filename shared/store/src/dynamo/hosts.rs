//! Each host's places ([`domain::politeness`]): `HOST#<host>` / `LEASES` holds `holders`, the
//! string set of the URLs being analysed there, and `paused_until`. A place is taken in the
//! claim's transaction and given back in the result's, so politeness costs no request of its
//! own while hosts have room.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use domain::Error;
use domain::politeness::{self, HostBusy, HostLease};
use domain::time::Millis;

use super::items::{LEASES_SK, host_pk};
use super::moves::Expression;
use super::{DynamoStore, Item, av_n, av_s, number_of};

/// How long an idle host's item is kept (its TTL, renewed by every place taken): longer than
/// any lease or pause.
const HOST_KEPT_SECONDS: i64 = 86_400;

/// The places several URLs take or give back, by host: their holders and the strictest limit.
pub(super) fn by_host<'a>(leases: impl IntoIterator<Item = &'a HostLease>) -> BTreeMap<&'a str, (Vec<String>, u32)> {
    let mut hosts: BTreeMap<&str, (Vec<String>, u32)> = BTreeMap::new();
    for lease in leases {
        let entry = hosts.entry(lease.host.as_str()).or_insert_with(|| (Vec::new(), lease.limit));
        entry.0.push(lease.holder.clone());
        entry.1 = entry.1.min(lease.limit);
    }
    hosts
}

fn key(host: &str) -> Item {
    HashMap::from([("pk".to_owned(), av_s(host_pk(host))), ("sk".to_owned(), av_s(LEASES_SK))])
}

fn holders_of(item: &Item) -> Vec<String> {
    match item.get("holders") {
        Some(AttributeValue::Ss(holders)) => holders.clone(),
        _ => Vec::new(),
    }
}

impl DynamoStore {
    /// The member that takes places for `holders` at `host` while it is not paused and has
    /// room for all of them under `limit`; `None` when more are asked for than `limit` allows.
    pub(super) fn host_take(
        &self,
        host: &str,
        holders: Vec<String>,
        limit: u32,
        now: Millis,
    ) -> Result<Option<TransactWriteItem>, Error> {
        let Some(room) = (limit as usize).checked_sub(holders.len()) else { return Ok(None) };
        Expression::default()
            .add("holders :holders")
            .value(":holders", AttributeValue::Ss(holders))
            .set("expires_at = :expires")
            .value(":expires", av_n(now / 1000 + HOST_KEPT_SECONDS))
            .condition("(attribute_not_exists(holders) OR size(holders) <= :room)")
            .value(":room", av_n(room))
            .condition("(attribute_not_exists(paused_until) OR paused_until <= :now)")
            .value(":now", av_n(now))
            .update(&self.table, key(host))
            .map(Some)
    }

    /// The member that gives the places of `holders` at `host` back.
    pub(super) fn host_give(&self, host: &str, holders: Vec<String>) -> Result<TransactWriteItem, Error> {
        Expression::default()
            .remove_from_set("holders :holders")
            .value(":holders", AttributeValue::Ss(holders))
            .update(&self.table, key(host))
    }

    /// Gives places back on their own: after a transaction that would have given them failed
    /// for another reason (a duplicate result still frees the place this delivery took).
    pub(super) async fn give_places_back(&self, lease: &HostLease) -> Result<(), Error> {
        Expression::default()
            .remove_from_set("holders :holders")
            .value(":holders", AttributeValue::Ss(vec![lease.holder.clone()]))
            .update_item(self, key(&lease.host))
            .await
            .map_err(|e| Error::store("UpdateItem", e))
    }

    /// What a claim that found `host` as `item` says: `Ok` after taking back the places of
    /// leases that have ended (there may be room now: claim again), or the host is busy.
    pub(super) async fn host_was_full(
        &self,
        host: &str,
        item: Option<&Item>,
        now: Millis,
    ) -> Result<Result<(), HostBusy>, Error> {
        let paused_until = item.and_then(|item| number_of(item, "paused_until")).filter(|until| *until > now);
        let holders = item.map(holders_of).unwrap_or_default();
        let ended = politeness::ended(&holders, now);
        if paused_until.is_some() || ended.is_empty() {
            return Ok(Err(HostBusy { paused_until }));
        }
        // Idempotent: another claim taking the same places back changes nothing.
        Expression::default()
            .remove_from_set("holders :ended")
            .value(":ended", AttributeValue::Ss(ended))
            .update_item(self, key(host))
            .await
            .map_err(|e| Error::store("UpdateItem", e))?;
        Ok(Ok(()))
    }

    pub(super) async fn pause(&self, host: &str, until: Millis) -> Result<(), Error> {
        let result = Expression::default()
            .set("paused_until = :until, expires_at = :expires")
            .value(":until", av_n(until))
            .value(":expires", av_n(until / 1000 + HOST_KEPT_SECONDS))
            .condition("(attribute_not_exists(paused_until) OR paused_until < :until)")
            .update_item(self, key(host))
            .await;
        // A failed condition: a later pause is already set, which stays.
        super::applied(result).map(drop)
    }
}
