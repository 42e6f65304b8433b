//! Supergraph loading on arbitrary text: parsing, the join/link directives, the API schema,
//! and, when it loads, a gateway over it planning a typename query. Oracle: no panic, hang or
//! runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(supergraph) = Supergraph::parse(text) else {
        return;
    };
    if let Ok(gateway) = Gateway::new(supergraph, Settings::default()) {
        let _ = gateway.explain("{ __typename }", None);
    }
});
