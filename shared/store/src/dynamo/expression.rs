//! One DynamoDB update or condition being built clause by clause, for a transaction's member
//! or a single UpdateItem: only the placeholders its expressions use are bound.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use domain::Error;

use super::{DynamoStore, Item, av_s};

/// One update or condition being built: clauses, names and values.
#[derive(Default)]
pub(crate) struct Expression {
    conditions: Vec<String>,
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    delete: Vec<String>,
    names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Expression {
    pub(crate) fn condition(mut self, clause: impl Into<String>) -> Self {
        self.conditions.push(clause.into());
        self
    }

    pub(crate) fn set(mut self, clause: impl Into<String>) -> Self {
        self.set.push(clause.into());
        self
    }

    pub(crate) fn add(mut self, clause: impl Into<String>) -> Self {
        self.add.push(clause.into());
        self
    }

    pub(crate) fn remove(mut self, attribute: impl Into<String>) -> Self {
        self.remove.push(attribute.into());
        self
    }

    /// `DELETE set :values`: takes elements out of a set (those absent change nothing).
    pub(super) fn remove_from_set(mut self, clause: impl Into<String>) -> Self {
        self.delete.push(clause.into());
        self
    }

    pub(crate) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// `attribute IN (...)` over `statuses`, their values bound as `:<prefix><i>`.
    pub(super) fn status_in(mut self, attribute: &str, prefix: &str, statuses: &[&str]) -> Self {
        let placeholders: Vec<String> = (0..statuses.len()).map(|i| format!(":{prefix}{i}")).collect();
        for (placeholder, status) in placeholders.iter().zip(statuses) {
            self.values.insert(placeholder.clone(), av_s(*status));
        }
        self.conditions.push(format!("{attribute} IN ({})", placeholders.join(", ")));
        self
    }

    /// As [`Self::status_in`], or no such attribute: a URL with no item yet is queued
    /// ([`super::url_lists`]).
    pub(super) fn status_in_or_absent(self, attribute: &str, prefix: &str, statuses: &[&str]) -> Self {
        let mut e = self.status_in(attribute, prefix, statuses);
        if let Some(clause) = e.conditions.pop() {
            e.conditions.push(format!("(attribute_not_exists({attribute}) OR {clause})"));
        }
        e
    }

    pub(super) fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.delete.is_empty() {
            parts.push(format!("DELETE {}", self.delete.join(", ")));
        }
        parts.join(" ")
    }

    pub(super) fn condition_expression(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "))
    }

    /// The placeholders the expressions use: DynamoDB refuses a request that binds one it
    /// does not use.
    fn used<T: Clone>(&self, bound: &HashMap<String, T>) -> Option<HashMap<String, T>> {
        let text = format!("{} {}", self.update_expression(), self.condition_expression().unwrap_or_default());
        let used: HashMap<String, T> =
            bound.iter().filter(|(name, _)| mentions(&text, name)).map(|(k, v)| (k.clone(), v.clone())).collect();
        (!used.is_empty()).then_some(used)
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        self.used(&self.names)
    }

    pub(super) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        self.used(&self.values)
    }

    /// A member of a transaction that updates `key`; a failed condition returns the item.
    pub(super) fn update(self, table: &str, key: Item) -> Result<TransactWriteItem, Error> {
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(self.update_expression())
            .set_condition_expression(self.condition_expression())
            .set_expression_attribute_names(self.names())
            .set_expression_attribute_values(self.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The same as a single UpdateItem of `key`; a failed condition returns the item.
    pub(super) async fn update_item(
        self,
        store: &DynamoStore,
        key: Item,
    ) -> Result<(), aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>> {
        self.update_request(&store.client, &store.table, key).send().await.map(drop)
    }

    /// A single UpdateItem of `key` in `table`, ready to send; a failed condition returns the
    /// item.
    pub(crate) fn update_request(self, client: &Client, table: &str, key: Item) -> UpdateItemFluentBuilder {
        client
            .update_item()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(self.update_expression())
            .set_condition_expression(self.condition_expression())
            .set_expression_attribute_names(self.names())
            .set_expression_attribute_values(self.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }
}

impl Expression {
    /// A PutItem of `item` in `table` on this expression's condition, ready to send.
    pub(crate) fn put_request(self, client: &Client, table: &str, item: Item) -> PutItemFluentBuilder {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(self.condition_expression())
            .set_expression_attribute_names(self.names())
            .set_expression_attribute_values(self.values())
    }
}

/// Whether `text` uses `placeholder` as a whole token (`:d1` is not in `:d10`).
fn mentions(text: &str, placeholder: &str) -> bool {
    text.match_indices(placeholder).any(|(at, _)| {
        text[at + placeholder.len()..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

#[cfg(test)]
mod tests {
    use super::super::av_n;
    use super::*;

    #[test]
    fn only_the_placeholders_used_are_bound() {
        assert!(mentions("ADD a :d1, b :d10", ":d10") && mentions("ADD a :d1, b :d10", ":d1"));
        assert!(!mentions("ADD b :d10", ":d1"));
        let e = Expression::default().set("x = :a").value(":a", av_n(1)).value(":unused", av_n(2));
        assert_eq!(e.values().unwrap().keys().collect::<Vec<_>>(), [":a"]);
    }
}
