//! Live subscriptions (`items` has the layout): one item per connection and scope, which the
//! live function queries per changed job, and one per connection listing its scopes, which
//! `$disconnect` deletes by and which bounds them. A followed job carries `live_gen`, the
//! attribute the live function's stream filter asks for.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::live::{MAX_SUBSCRIPTIONS_PER_CONNECTION, SUBSCRIPTION_TTL_SECONDS, Watch};
use domain::time::Millis;
use domain::{Error, Job, JobId, Tenant};
use futures::{StreamExt, TryStreamExt};

use super::expression::Expression;
use super::items::{CONNECTION_SK, LIVE_GENERATION, USAGE_SK, connection_pk, scope_from_pk, scope_pk, tenant_pk};
use super::{DynamoStore, Item, applied, av_n, av_s};
use crate::{Lookup, Refused, Scope, Subscriptions, Watcher};

/// Active jobs marked per all-jobs subscription: a tenant's `max_active_jobs` is far below.
const FOLLOW_MAX: usize = 200;
/// Updates in flight at once while marking jobs or trimming connections.
const PARALLEL: usize = 8;

impl DynamoStore {
    /// Adds `scope` to the connection's list while it has room (or holds it already).
    async fn hold_scope(&self, connection: &str, scope: &str, now: Millis) -> Result<bool, Error> {
        let update = Expression::default()
            .add("scopes :scope")
            .value(":scope", AttributeValue::Ss(vec![scope.to_owned()]))
            .set("expires_at = :expires")
            .value(":expires", av_n(now / 1000 + SUBSCRIPTION_TTL_SECONDS))
            .condition("(attribute_not_exists(scopes) OR size(scopes) < :max OR contains(scopes, :one))")
            .value(":max", av_n(MAX_SUBSCRIPTIONS_PER_CONNECTION))
            .value(":one", av_s(scope));
        applied(update.update_item(self, Self::key_of(&connection_pk(connection), CONNECTION_SK)).await)
    }

    /// A new watch generation on the job: its item changes, so its state is on the stream.
    async fn follow(&self, id: &JobId) -> Result<bool, Error> {
        let update = Expression::default()
            .add(format!("{LIVE_GENERATION} :one"))
            .value(":one", av_n(1))
            .condition("attribute_exists(pk)");
        applied(update.update_item(self, Self::job_key(id)).await)
    }

    /// The tenant's unfinished jobs, from its usage item's set.
    async fn active_jobs(&self, tenant: &Tenant) -> Result<Vec<JobId>, Error> {
        let item = self.get_consistent(Self::key_of(&tenant_pk(tenant), USAGE_SK)).await?;
        Ok(match item.as_ref().and_then(|item| item.get("active")) {
            Some(AttributeValue::Ss(ids)) => ids.iter().filter_map(|id| JobId::parse(id)).take(FOLLOW_MAX).collect(),
            _ => Vec::new(),
        })
    }

    async fn subscribers(&self, scope: &Scope, limit: Option<i32>) -> Result<Vec<Watcher>, Error> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", av_s(scope_pk(scope)))
            .projection_expression("sk")
            .set_limit(limit);
        let items = match limit {
            Some(_) => query.send().await.map_err(|e| Error::store("Query", e))?.items.unwrap_or_default(),
            None => self.query_all(query).await?,
        };
        Ok(items
            .into_iter()
            .filter_map(|item| match item.get("sk") {
                Some(AttributeValue::S(connection)) => {
                    Some(Watcher { connection: connection.clone(), scope: scope.clone() })
                }
                _ => None,
            })
            .collect())
    }

    fn subscription_key(watcher: &Watcher) -> Item {
        Self::key_of(&scope_pk(&watcher.scope), &watcher.connection)
    }
}

impl Subscriptions for DynamoStore {
    async fn subscribe(
        &self,
        connection: &str,
        tenant: &Tenant,
        watch: &Watch,
        now: Millis,
    ) -> Result<Result<(), Refused>, Error> {
        let scope = match watch {
            Watch::Job(id) => match self.get_job(id).await? {
                Some(job) if &job.tenant == tenant => Scope::Job(id.clone()),
                _ => return Ok(Err(Refused::NotFound)),
            },
            Watch::AllJobs => Scope::Tenant(tenant.clone()),
        };
        let pk = scope_pk(&scope);
        if !self.hold_scope(connection, &pk, now).await? {
            return Ok(Err(Refused::TooMany));
        }
        // The subscription before the mark: the change the mark makes finds it.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", av_s(&pk))
            .item("sk", av_s(connection))
            .item("expires_at", av_n(now / 1000 + SUBSCRIPTION_TTL_SECONDS))
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        let followed = match scope {
            Scope::Job(id) => vec![id],
            Scope::Tenant(tenant) => self.active_jobs(&tenant).await?,
        };
        // A job that finished and went meanwhile has nothing left to show.
        futures::stream::iter(followed)
            .map(|id| async move { self.follow(&id).await })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(Ok(()))
    }

    async fn watchers(&self, job: &Job) -> Result<Vec<Watcher>, Error> {
        let (own, tenant) = (Scope::Job(job.id.clone()), Scope::Tenant(job.tenant.clone()));
        let (own, tenants) = futures::try_join!(self.subscribers(&own, None), self.subscribers(&tenant, None))?;
        Ok(own.into_iter().chain(tenants).collect())
    }

    async fn follow_new_job(&self, job: &Job, _now: Millis) -> Result<bool, Error> {
        if self.subscribers(&Scope::Tenant(job.tenant.clone()), Some(1)).await?.is_empty() {
            return Ok(false);
        }
        self.follow(&job.id).await?;
        Ok(true)
    }

    async fn unfollow_job(&self, id: &JobId, generation: u64) -> Result<bool, Error> {
        let update = Expression::default()
            .remove(LIVE_GENERATION)
            .condition(format!("{LIVE_GENERATION} = :seen"))
            .value(":seen", av_n(generation));
        applied(update.update_item(self, Self::job_key(id)).await)
    }

    async fn drop_subscriptions(&self, watchers: &[Watcher]) -> Result<(), Error> {
        self.delete_keys(watchers.iter().map(Self::subscription_key).collect()).await?;
        let mut by_connection: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for watcher in watchers {
            by_connection.entry(watcher.connection.clone()).or_default().push(scope_pk(&watcher.scope));
        }
        // A connection that is still open gets its room back.
        futures::stream::iter(by_connection)
            .map(|(connection, scopes)| async move {
                let update = Expression::default()
                    .remove_from_set("scopes :gone")
                    .value(":gone", AttributeValue::Ss(scopes))
                    .condition("attribute_exists(pk)");
                applied(update.update_item(self, Self::key_of(&connection_pk(&connection), CONNECTION_SK)).await)
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(())
    }

    async fn disconnect(&self, connection: &str) -> Result<usize, Error> {
        let key = Self::key_of(&connection_pk(connection), CONNECTION_SK);
        let Some(item) = self.get_consistent(key.clone()).await? else { return Ok(0) };
        let scopes: Vec<Scope> = match item.get("scopes") {
            Some(AttributeValue::Ss(pks)) => pks.iter().filter_map(|pk| scope_from_pk(pk)).collect(),
            _ => Vec::new(),
        };
        let count = scopes.len();
        let mut keys: Vec<Item> = scopes
            .into_iter()
            .map(|scope| Self::subscription_key(&Watcher { connection: connection.to_owned(), scope }))
            .collect();
        keys.push(key);
        self.delete_keys(keys).await?;
        Ok(count)
    }
}
