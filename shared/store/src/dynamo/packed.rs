//! A result's analysis as stored: its JSON deflated into one binary attribute. DynamoDB bills
//! a write per started KB of the whole item, twice in a transaction, and an analysis as a
//! map spends most of its bytes on repeated attribute names; deflated it is about a third.
//! The few values a results filter reads in DynamoDB are kept beside it as plain attributes
//! ([`filterable`]). Items written before keep a map, which still reads.

use std::io::Read;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::field::FieldFilter;
use domain::{Analysis, Error};
use flate2::Compression;
use flate2::read::{DeflateDecoder, DeflateEncoder};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

/// The largest analysis read back: a deflated item cannot hold more than 400 KB, so this is
/// only a guard against a corrupt blob inflating without end.
const MAX_INFLATED: u64 = 8 * 1024 * 1024;

/// The analysis deflated.
pub fn pack(analysis: &Analysis) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(analysis).map_err(|e| Error::Corrupt(format!("analysis: {e}")))?;
    let mut packed = Vec::with_capacity(json.len() / 3);
    DeflateEncoder::new(json.as_slice(), Compression::best())
        .read_to_end(&mut packed)
        .map_err(|e| Error::Corrupt(format!("deflating an analysis: {e}")))?;
    Ok(packed)
}

/// An analysis read back from [`pack`]'s bytes.
pub fn unpack(bytes: &[u8]) -> Result<Analysis, Error> {
    let mut json = Vec::with_capacity(bytes.len() * 4);
    DeflateDecoder::new(bytes)
        .take(MAX_INFLATED)
        .read_to_end(&mut json)
        .map_err(|e| Error::Corrupt(format!("inflating an analysis: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| Error::Corrupt(format!("analysis: {e}")))
}

/// The attribute value an analysis is written as.
pub fn attribute(analysis: &Analysis) -> Result<AttributeValue, Error> {
    pack(analysis).map(|bytes| AttributeValue::B(Blob::new(bytes)))
}

/// The analysis values a results filter reads in DynamoDB, as top-level attributes of the
/// task (the packed analysis cannot be looked into): its field-data verdict and status.
pub fn filterable(analysis: &Analysis) -> Vec<(&'static str, String)> {
    [FieldFilter::OVERALL, FieldFilter::STATUS]
        .into_iter()
        .filter_map(|name| Some((name, analysis.metrics.get(name)?.as_str()?.to_owned())))
        .collect()
}

/// `#[serde(with)]` for the task item's `analysis`: written packed, read packed or as the map
/// items written before packing hold.
pub mod serde_packed {
    use super::*;

    pub fn serialize<S: Serializer>(analysis: &Option<Analysis>, serializer: S) -> Result<S::Ok, S::Error> {
        match analysis {
            Some(analysis) => {
                let bytes = pack(analysis).map_err(serde::ser::Error::custom)?;
                serializer.serialize_bytes(&bytes)
            }
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Analysis>, D::Error> {
        deserializer.deserialize_any(Stored).map(Some)
    }

    struct Stored;

    impl<'de> Visitor<'de> for Stored {
        type Value = Analysis;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a packed analysis (binary) or an analysis map")
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Analysis, E> {
            unpack(bytes).map_err(E::custom)
        }

        fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Analysis, E> {
            self.visit_bytes(&bytes)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Analysis, A::Error> {
            Analysis::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Strategy;
    use serde_json::json;

    fn analysis() -> Analysis {
        let metrics = json!({
            "delivery_score": 87.5, "ttfb_ms": 120.5, "html_bytes": 14_000, "requests": 12,
            "field_overall_category": "poor", "field_status": "available", "field_lcp_ms": 4_100
        });
        Analysis {
            engine: "http".into(),
            strategy: Strategy::Mobile,
            score: None,
            metrics: metrics.as_object().cloned().unwrap_or_default(),
            cached_from: None,
        }
    }

    #[test]
    fn an_analysis_survives_packing() {
        let analysis = analysis();
        assert_eq!(unpack(&pack(&analysis).unwrap()).unwrap(), analysis);
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(matches!(unpack(b"not deflate at all"), Err(Error::Corrupt(_))));
    }

    #[test]
    fn the_filtered_values_stand_beside_the_packed_analysis() {
        assert_eq!(
            filterable(&analysis()),
            [("field_overall_category", "poor".to_owned()), ("field_status", "available".to_owned())]
        );
        let mut lab_only = analysis();
        lab_only.metrics.retain(|name, _| !name.starts_with("field_"));
        assert!(filterable(&lab_only).is_empty());
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(default, with = "serde_packed", skip_serializing_if = "Option::is_none")]
        analysis: Option<Analysis>,
    }

    #[test]
    fn an_item_holds_the_analysis_as_binary_and_reads_the_old_map_too() {
        let holder = Holder { analysis: Some(analysis()) };
        let item: serde_dynamo::Item = serde_dynamo::to_item(&holder).unwrap();
        assert!(matches!(item.get("analysis"), Some(serde_dynamo::AttributeValue::B(_))), "{item:?}");
        assert_eq!(serde_dynamo::from_item::<_, Holder>(item).unwrap(), holder);
        let old: serde_dynamo::Item =
            serde_dynamo::to_item(json!({"analysis": serde_json::to_value(analysis()).unwrap()})).unwrap();
        assert!(matches!(old.get("analysis"), Some(serde_dynamo::AttributeValue::M(_))));
        assert_eq!(serde_dynamo::from_item::<_, Holder>(old).unwrap(), holder);
        let none: serde_dynamo::Item = serde_dynamo::to_item(Holder { analysis: None }).unwrap();
        assert_eq!(serde_dynamo::from_item::<_, Holder>(none).unwrap(), Holder { analysis: None });
    }
}
