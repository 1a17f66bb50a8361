//! A result's analysis as stored: its JSON deflated into one binary attribute. DynamoDB bills
//! a write per started KB of the whole item, twice in a transaction, and an analysis as a
//! map spends most of its bytes on repeated attribute names. Deflated alone it is about a
//! third; deflated against a dictionary of a typical analysis (the names and the score
//! rules' thresholds every analysis repeats) an http result is a few dozen to a few hundred
//! bytes, which keeps its task item under the 1 KB of one write unit. Results filters read
//! the analysis as unpacked (`TaskFilter::matches`). Items written before keep a map or a
//! plain deflate, which still read.

use std::io::Read;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Analysis, Error};
use flate2::read::DeflateDecoder;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

/// The largest analysis read back: a deflated item cannot hold more than 400 KB, so this is
/// only a guard against a corrupt blob inflating without end.
const MAX_INFLATED: usize = 8 * 1024 * 1024;

/// The dictionary the analyses are deflated against. Every stored analysis needs it to be
/// read back, so it never changes: a better one would be a new format byte beside this one.
const DICTIONARY: &[u8] = include_bytes!("analysis-dictionary.json");

/// The first byte of an analysis deflated against [`DICTIONARY`]. A raw deflate stream (the
/// format before it) never starts with it: its block-type bits (`11`) are reserved.
const WITH_DICTIONARY: u8 = 0b0000_0110;

fn corrupt(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what} an analysis: {err}"))
}

/// The analysis deflated against the dictionary, after its format byte.
pub fn pack(analysis: &Analysis) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(analysis).map_err(|e| Error::Corrupt(format!("analysis: {e}")))?;
    let mut deflate = Compress::new(Compression::best(), false);
    deflate.set_dictionary(DICTIONARY).map_err(|e| corrupt("deflating", e))?;
    // Deflate never grows its input by more than a few bytes per 16 KB block.
    let mut packed = Vec::with_capacity(json.len() + json.len() / 1000 + 64);
    packed.push(WITH_DICTIONARY);
    match deflate.compress_vec(&json, &mut packed, FlushCompress::Finish).map_err(|e| corrupt("deflating", e))? {
        Status::StreamEnd => Ok(packed),
        status => Err(corrupt("deflating", format!("the stream did not end ({status:?})"))),
    }
}

/// An analysis read back from [`pack`]'s bytes (or from the plain deflate written before).
pub fn unpack(bytes: &[u8]) -> Result<Analysis, Error> {
    let json = match bytes.split_first() {
        Some((&WITH_DICTIONARY, deflated)) => inflate_with_dictionary(deflated)?,
        _ => {
            let mut json = Vec::with_capacity(bytes.len() * 4);
            DeflateDecoder::new(bytes)
                .take(MAX_INFLATED as u64)
                .read_to_end(&mut json)
                .map_err(|e| corrupt("inflating", e))?;
            json
        }
    };
    serde_json::from_slice(&json).map_err(|e| Error::Corrupt(format!("analysis: {e}")))
}

fn inflate_with_dictionary(deflated: &[u8]) -> Result<Vec<u8>, Error> {
    let mut inflate = Decompress::new(false);
    inflate.set_dictionary(DICTIONARY).map_err(|e| corrupt("inflating", e))?;
    let mut json = Vec::with_capacity(deflated.len() * 8);
    loop {
        let read = usize::try_from(inflate.total_in()).unwrap_or(usize::MAX);
        let input = deflated.get(read..).unwrap_or_default();
        if json.len() == json.capacity() {
            if json.len() >= MAX_INFLATED {
                return Err(corrupt("inflating", "more than 8 MB"));
            }
            json.reserve(json.len().max(4096));
        }
        let before = (inflate.total_in(), inflate.total_out());
        match inflate.decompress_vec(input, &mut json, FlushDecompress::Finish).map_err(|e| corrupt("inflating", e))? {
            Status::StreamEnd => return Ok(json),
            // No progress with room to write: the input ended before the stream did.
            _ if before == (inflate.total_in(), inflate.total_out()) && json.len() < json.capacity() => {
                return Err(corrupt("inflating", "the stream is cut short"));
            }
            _ => {}
        }
    }
}

/// The attribute value an analysis is written as.
pub fn attribute(analysis: &Analysis) -> Result<AttributeValue, Error> {
    pack(analysis).map(|bytes| AttributeValue::B(Blob::new(bytes)))
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
    use sha2::Digest;

    const DICTIONARY_DIGEST: &str = "4f6e3153baa7a540";

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
        let packed = pack(&analysis()).unwrap();
        assert!(matches!(unpack(&packed[..packed.len() / 2]), Err(Error::Corrupt(_))), "cut short");
        assert!(matches!(unpack(&[WITH_DICTIONARY]), Err(Error::Corrupt(_))), "nothing after the format byte");
    }

    #[test]
    fn an_analysis_deflated_before_the_dictionary_still_reads() {
        let json = serde_json::to_vec(&analysis()).unwrap();
        let mut plain = Vec::new();
        flate2::read::DeflateEncoder::new(json.as_slice(), Compression::best()).read_to_end(&mut plain).unwrap();
        assert_ne!(plain[0], WITH_DICTIONARY);
        assert_eq!(unpack(&plain).unwrap(), analysis());
    }

    #[test]
    fn the_dictionary_is_the_one_stored_analyses_were_deflated_against() {
        // Changing it would make every stored analysis unreadable: a new dictionary needs a
        // new format byte, and this one kept.
        let digest = sha2::Sha256::digest(DICTIONARY);
        assert_eq!(hex::encode(&digest[..8]), DICTIONARY_DIGEST);
    }

    #[test]
    fn a_typical_http_analysis_packs_to_a_small_fraction_of_its_json() {
        let sample: Analysis = serde_json::from_slice(DICTIONARY).unwrap();
        let mut other = sample.clone();
        other.metrics.insert("final_url".into(), json!("https://shop.example.org/en/catalogue?page=2"));
        other.metrics.insert("ttfb_ms".into(), json!(431.7));
        other.metrics.insert("delivery_score".into(), json!(61.25));
        let json = serde_json::to_vec(&other).unwrap().len();
        let packed = pack(&other).unwrap().len();
        assert!(packed * 8 < json, "{packed} bytes packed from {json}");
        assert_eq!(unpack(&pack(&other).unwrap()).unwrap(), other);
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
