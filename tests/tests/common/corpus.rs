//! Golden answers for a subgraph: one corpus of GraphQL requests per subgraph under
//! `tests/corpus/<subgraph>/`, answered over HTTP and compared with what was recorded.
//!
//! Each case is `<case>.graphql`, with `<case>.variables.json` when it takes variables. It is
//! posted twice — its text new to the server, then again — and both answers must equal
//! `<case>.answer.json`, which also records the round trips to the database each answer took
//! and the statements it sent.
//! `UPDATE_GOLDEN=1` writes the answer files from what the server says instead.

use std::path::Path;

use serde_json::{Value, json};

use super::HttpSubgraph;

/// Checks every case of `subgraph`'s corpus against `server`, whose database round trips and
/// statements (SQL, Cypher, commands, requests) `recorder` counts and keeps.
pub async fn check(
    server: &HttpSubgraph,
    subgraph: &str,
    recorder: &polygraph_subgraph_core::recorder::Recorder,
) {
    recorder.record();
    let folder = super::repo_root().join("tests/corpus").join(subgraph);
    let mut cases: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "graphql"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", folder.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in &cases {
        let answered = answer_twice(server, case, recorder).await;
        let golden = case.with_extension("answer.json");
        if update {
            let text = serde_json::to_string_pretty(&answered).expect("serializes") + "\n";
            std::fs::write(&golden, text).expect("writes the golden answer");
            continue;
        }
        let expected: Value = std::fs::read_to_string(&golden)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(|| panic!("{} is missing: run with UPDATE_GOLDEN=1", golden.display()));
        if answered != expected {
            failures.push(format!(
                "{}:\n expected {expected:#}\n got {answered:#}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Posts `case` twice; the answer and round trips, which must be the same both times.
async fn answer_twice(
    server: &HttpSubgraph,
    case: &Path,
    recorder: &polygraph_subgraph_core::recorder::Recorder,
) -> Value {
    let query = std::fs::read_to_string(case).expect("reads the case");
    let variables_file = case.with_extension("variables.json");
    let variables: Value = std::fs::read_to_string(&variables_file).map_or(Value::Null, |text| {
        serde_json::from_str(&text).expect("variables are JSON")
    });
    let body = json!({ "query": query, "variables": variables });
    let mut answers = Vec::new();
    for _ in 0..2 {
        recorder.recorded();
        let before = recorder.count();
        let answer = server.post(&body).await;
        answers.push(json!({
            "round_trips": recorder.count() - before,
            "statements": recorder.recorded(),
            "answer": answer,
        }));
    }
    assert_eq!(
        answers[0],
        answers[1],
        "{}: the first answer and the repeat differ",
        case.display()
    );
    answers.swap_remove(0)
}
