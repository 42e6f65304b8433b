//! The subgraph-reply tape parser (`gateway/src/json.rs`) on arbitrary bytes. Oracles: no
//! panic, hang or runaway allocation; every text serde_json accepts is accepted and reads back
//! the same; what the tape writes parses again to the same value.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use polygraph_gateway::json::Doc;

fuzz_target!(|data: &[u8]| {
    let parsed = Doc::parse(Bytes::copy_from_slice(data));
    let reference = serde_json::from_slice::<serde_json::Value>(data);
    match (&parsed, &reference) {
        (Err(error), Ok(_)) => panic!("serde_json accepts what the tape refuses: {error}"),
        (Ok(doc), Ok(expected)) => {
            let mut written = Vec::new();
            doc.root().write(&mut written);
            let again: serde_json::Value =
                serde_json::from_slice(&written).expect("the tape writes JSON");
            assert_eq!(&again, expected, "the tape reads a different value");
            let value = serde_json::to_value(doc.root().to_value()).expect("converts");
            assert_eq!(&value, expected, "to_value gives a different value");
        }
        _ => {}
    }
    if let Ok(doc) = parsed {
        // Walk every value as the merge does.
        fn walk(value: polygraph_gateway::json::DocValue<'_>) -> usize {
            if value.is_object() {
                value.fields().map(|(_, v)| walk(v)).sum::<usize>() + 1
            } else if value.is_array() {
                value.items().map(walk).sum::<usize>() + 1
            } else {
                let _ = value.as_str();
                1
            }
        }
        walk(doc.root());
        let _ = doc
            .root()
            .get("data")
            .and_then(|data| data.get("_entities"));
    }
});
