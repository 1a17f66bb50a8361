//! An item's size by DynamoDB's own rules: what its writes are billed by (one write unit per
//! started KB, twice in a transaction) and what it stores. Used to hold items to their bounds
//! in tests and to price what a job keeps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// The bytes one write unit covers.
pub const WRITE_UNIT_BYTES: usize = 1024;

/// The size DynamoDB gives an attribute value.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// A number's size: one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    1 + significant.len().div_ceil(2) + usize::from(n.starts_with('-'))
}

/// An item's size: each attribute's name and value.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// The write units one plain write of `item` costs.
pub fn write_units(item: &HashMap<String, AttributeValue>) -> usize {
    item_size(item).div_ceil(WRITE_UNIT_BYTES).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(value_size(&AttributeValue::S("JOB#1".into())), 5);
        assert_eq!(number_size("123"), 3, "two bytes of digits and one");
        assert_eq!(number_size("-1000"), 3);
        assert_eq!(value_size(&AttributeValue::M(HashMap::from([("a".into(), AttributeValue::Bool(true))]))), 6);
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("JOB#1".into())),
            ("sk".to_owned(), AttributeValue::S("URL#000001".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 5 + 2 + 10);
        assert_eq!(write_units(&item), 1);
        let big = HashMap::from([("b".to_owned(), AttributeValue::S("x".repeat(WRITE_UNIT_BYTES)))]);
        assert_eq!(write_units(&big), 2, "a started KB is a unit");
    }
}
