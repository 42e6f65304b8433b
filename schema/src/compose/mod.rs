//! Composition: subgraph SDLs (Federation 2, and Federation 1's `extend type` style) into an
//! Apollo-format supergraph the gateway loads, or the reasons they do not compose, each with
//! Apollo's error code, the subgraph and the schema coordinate.
//!
//! The steps: [`ingest`] reads each subgraph with its federation directives resolved whatever
//! it imported them as; [`validate`] checks its field sets; [`merge`] (with [`fields`]) merges
//! types by the federation rules; [`validate`] checks the result; [`render`] prints it.

mod composed;
mod error;
mod fields;
mod fieldset;
mod ingest;
mod merge;
mod model;
mod reach;
mod render;
mod validate;

pub use error::Error;

/// One subgraph to compose: its name, the URL the gateway reaches it at, and its SDL (what
/// `_service { sdl }` answers).
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

/// Composes `subgraphs` into a supergraph's SDL, or says every reason it cannot.
///
/// Subgraphs are taken in name order, so the result does not depend on the order given.
pub fn compose(subgraphs: &[Input]) -> Result<String, Vec<Error>> {
    if subgraphs.is_empty() {
        return Err(vec![Error::new(
            "NO_SUBGRAPHS",
            "there are no subgraphs to compose",
        )]);
    }
    let mut sorted: Vec<&Input> = subgraphs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut errors = Vec::new();
    for pair in sorted.windows(2) {
        if pair[0].name == pair[1].name {
            errors.push(
                Error::new(
                    "DUPLICATE_SUBGRAPH_NAME",
                    format!("two subgraphs are named {:?}", pair[0].name),
                )
                .in_subgraph(&pair[0].name),
            );
        }
    }
    let mut read = Vec::new();
    for input in sorted {
        match ingest::read(&input.name, &input.url, &input.sdl) {
            Ok(subgraph) => {
                errors.extend(validate::subgraph(&subgraph));
                read.push(subgraph);
            }
            Err(found) => errors.extend(found),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let merged = merge::merge(&read)?;
    let mut errors = validate::merged(&merged);
    errors.extend(reach::check(&read, &merged));
    if !errors.is_empty() {
        return Err(errors);
    }
    let sdl = render::render(&read, &merged);
    if let Err(invalid) = apollo_compiler::Schema::parse_and_validate(&sdl, "supergraph.graphql") {
        return Err(invalid
            .errors
            .iter()
            .map(|e| Error::new("INVALID_SUPERGRAPH", e.error.to_string()))
            .collect());
    }
    Ok(sdl)
}
