//! Reading a service's YAML configuration, the same way for the gateway and every subgraph.
//!
//! - `${NAME}` in the file is replaced by the environment variable `NAME` before parsing;
//!   `${NAME:-fallback}` uses `fallback` when it is unset or empty, and `$${` writes a literal
//!   `${`. A variable that is unset, with no fallback, is an error naming it and its line.
//! - Every setting can be overridden from the environment: `PREFIX__KEY__SUBKEY=value`, the
//!   path in upper case with `__` between keys (`POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH=20`).
//!   The value is read as YAML, so `20`, `true` and `[a, b]` are a number, a flag and a list.
//! - An error names the file, the key (`limits.max_depth`) and, for the file's own text, the
//!   line and column; for an override, the variable that set it.

use std::fmt::Write as _;
use std::path::Path;

use serde::de::DeserializeOwned;

/// Where a setting came from, for errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file, at this line and column (1-based), where the parser knew it.
    File {
        line: Option<usize>,
        column: Option<usize>,
    },
    /// An environment variable.
    Environment(String),
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A setting's value, a key, or the YAML itself is wrong.
    #[error("{}", describe(.path, .key, .origin, .message))]
    Invalid {
        path: String,
        /// Dotted path of the key (`limits.max_depth`), empty for the document itself.
        key: String,
        origin: Origin,
        message: String,
    },
}

fn describe(path: &str, key: &str, origin: &Origin, message: &str) -> String {
    let mut out = path.to_owned();
    match origin {
        Origin::File {
            line: Some(line),
            column,
        } => {
            let _ = write!(out, ":{line}");
            if let Some(column) = column {
                let _ = write!(out, ":{column}");
            }
        }
        Origin::File { line: None, .. } => {}
        Origin::Environment(variable) => {
            let _ = write!(out, " (overridden by {variable})");
        }
    }
    if !key.is_empty() {
        let _ = write!(out, ": `{key}`");
    }
    let _ = write!(out, ": {message}");
    out
}

/// Reads the YAML file at `path` into `T`: `${NAME}` expanded, `PREFIX__…` overrides from the
/// process environment applied.
pub fn from_file<T: DeserializeOwned>(path: &Path, prefix: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    from_text(
        &text,
        &path.display().to_string(),
        &|name| std::env::var(name).ok(),
        &overrides(prefix, std::env::vars()),
    )
}

/// The `PREFIX__…` variables among `vars`, as (variable, lower-case key path) pairs, sorted.
pub fn overrides(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let start = format!("{prefix}__");
    let mut found: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(&start) && name.len() > start.len())
        .collect();
    found.sort();
    found
}

/// Parses `text` (named `path` in errors) into `T`, with `env` for `${NAME}` and `overrides`
/// as (variable, value) pairs whose variables start with a prefix and `__`.
pub fn from_text<T: DeserializeOwned>(
    text: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &[(String, String)],
) -> Result<T, ConfigError> {
    let expanded = expand(text, env).map_err(|(line, message)| ConfigError::Invalid {
        path: path.to_owned(),
        key: String::new(),
        origin: Origin::File {
            line: Some(line),
            column: None,
        },
        message,
    })?;
    // An empty file is an empty mapping: every setting at its default.
    let expanded = if expanded.trim().is_empty() {
        "{}".to_owned()
    } else {
        expanded
    };
    let typed = typed_from_text::<T>(&expanded, path);
    if overrides.is_empty() {
        return typed;
    }
    let mut tree: serde_yaml::Value =
        serde_yaml::from_str(&expanded).map_err(|error| located(path, String::new(), &error))?;
    if tree.is_null() {
        tree = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
    }
    for (variable, value) in overrides {
        apply(&mut tree, variable, value).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            key: key_of(variable),
            origin: Origin::Environment(variable.clone()),
            message,
        })?;
    }
    match serde_path_to_error::deserialize::<_, T>(tree) {
        Ok(value) => Ok(value),
        Err(error) => {
            let key = error.path().to_string();
            let key = if key == "." { String::new() } else { key };
            // The file alone was wrong at a line: say so. Else an override made it wrong.
            typed?;
            let variable = overrides
                .iter()
                .map(|(variable, _)| variable)
                .find(|variable| key.starts_with(&key_of(variable)) || key.is_empty())
                .or_else(|| overrides.first().map(|(variable, _)| variable))
                .cloned()
                .unwrap_or_default();
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                key,
                origin: Origin::Environment(variable),
                message: error.into_inner().to_string(),
            })
        }
    }
}

fn typed_from_text<T: DeserializeOwned>(text: &str, path: &str) -> Result<T, ConfigError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let key = if key == "." { String::new() } else { key };
        located(path, key, error.inner())
    })
}

fn located(path: &str, key: String, error: &serde_yaml::Error) -> ConfigError {
    let location = error.location();
    let mut message = error.to_string();
    // serde_yaml appends " at line L column C"; the location is said once, up front.
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    // ... and starts with the path it knew, which the key already says.
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && key.starts_with(prefix)
    {
        message = rest.to_owned();
    }
    ConfigError::Invalid {
        path: path.to_owned(),
        key,
        origin: Origin::File {
            line: location.as_ref().map(serde_yaml::Location::line),
            column: location.as_ref().map(serde_yaml::Location::column),
        },
        message,
    }
}

/// `POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH` → `limits.max_depth`.
fn key_of(variable: &str) -> String {
    variable
        .split("__")
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// Sets the key path `variable` names in `tree` to `value` read as YAML.
fn apply(tree: &mut serde_yaml::Value, variable: &str, value: &str) -> Result<(), String> {
    let parsed: serde_yaml::Value = if value.is_empty() {
        serde_yaml::Value::String(String::new())
    } else {
        serde_yaml::from_str(value)
            .map_err(|error| format!("the value is not YAML ({error}); quote it"))?
    };
    let path: Vec<String> = variable
        .split("__")
        .skip(1)
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err("the variable's key path has an empty part".to_owned());
    }
    let mut node = tree;
    for (index, part) in path.iter().enumerate() {
        if node.is_null() {
            *node = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
        }
        let Some(mapping) = node.as_mapping_mut() else {
            let parent = path[..index].join(".");
            return Err(format!(
                "`{parent}` is not a mapping, so it has no `{part}`"
            ));
        };
        let key = serde_yaml::Value::String(part.clone());
        if index + 1 == path.len() {
            mapping.insert(key, parsed);
            return Ok(());
        }
        node = mapping.entry(key).or_insert(serde_yaml::Value::Null);
    }
    Ok(())
}

/// Replaces `${NAME}` and `${NAME:-fallback}` in `text`; `$${` stays a literal `${`. Errors
/// give the 1-based line and what is wrong.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let Some(end) = rest[at..].find('}') else {
                return Err((number, "`${` without a closing `}`".to_owned()));
            };
            let inner = &rest[at + 2..at + end];
            let (name, fallback) = match inner.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((number, format!("`${{{inner}}}` is not a variable name")));
            }
            let value = match (env(name).filter(|value| !value.is_empty()), fallback) {
                (Some(value), _) => value,
                (None, Some(fallback)) => fallback.to_owned(),
                (None, None) => {
                    return Err((
                        number,
                        format!("the environment variable {name} is not set"),
                    ));
                }
            };
            if value.contains('\n') {
                return Err((number, format!("{name} holds a line break")));
            }
            out.push_str(&value);
            rest = &rest[at + end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Limits {
        max_depth: u32,
        names: Vec<String>,
    }

    impl Default for Limits {
        fn default() -> Self {
            Self {
                max_depth: 10,
                names: Vec::new(),
            }
        }
    }

    #[derive(Debug, serde::Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        url: String,
        limits: Limits,
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.internal".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str, overrides: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        from_text(text, "gateway.yaml", &env, &overrides)
    }

    #[test]
    fn variables_are_expanded_with_fallbacks_and_escapes() {
        let settings = parse("url: redis://${HOST}:${PORT:-6379}/$${KEEP}\n", &[]).unwrap();
        assert_eq!(settings.url, "redis://db.internal:6379/${KEEP}");
        let empty = parse("url: ${EMPTY:-fallback}\n", &[]).unwrap();
        assert_eq!(empty.url, "fallback");
        let error = parse("# one\nurl: ${MISSING}\n", &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "gateway.yaml:2: the environment variable MISSING is not set"
        );
        assert!(parse("url: ${NOT CLOSED\n", &[]).is_err());
        assert!(parse("url: ${a-b}\n", &[]).is_err());
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let error = parse("url: x\nlimits:\n  max_depth: deep\n", &[]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("gateway.yaml:3:") && text.contains("`limits.max_depth`"),
            "{text}"
        );
        let unknown = parse("limits:\n  max_dept: 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            unknown.starts_with("gateway.yaml:2:") && unknown.contains("unknown field `max_dept`"),
            "{unknown}"
        );
        let syntax = parse("limits: [\n", &[]).unwrap_err().to_string();
        assert!(syntax.starts_with("gateway.yaml:"), "{syntax}");
    }

    #[test]
    fn environment_overrides_any_setting() {
        let settings = parse(
            "url: x\nlimits:\n  max_depth: 3\n",
            &[
                ("POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH", "20"),
                ("POLYGRAPH_GATEWAY__LIMITS__NAMES", "[a, b]"),
                ("POLYGRAPH_GATEWAY__URL", "redis://cache:6380"),
            ],
        )
        .unwrap();
        assert_eq!(settings.url, "redis://cache:6380");
        assert_eq!(settings.limits.max_depth, 20);
        assert_eq!(settings.limits.names, ["a", "b"]);
        // An empty file and a section the file lacks.
        let fresh = parse("", &[("POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH", "7")]).unwrap();
        assert_eq!(fresh.limits.max_depth, 7);
    }

    #[test]
    fn a_bad_override_names_its_variable() {
        let error = parse(
            "url: x\n",
            &[("POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH", "deep")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("POLYGRAPH_GATEWAY__LIMITS__MAX_DEPTH")
                && error.contains("`limits.max_depth`"),
            "{error}"
        );
        let unknown = parse("", &[("POLYGRAPH_GATEWAY__LIMITS__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("unknown field `nope`"), "{unknown}");
        let through = parse("url: x\n", &[("POLYGRAPH_GATEWAY__URL__PART", "1")])
            .unwrap_err()
            .to_string();
        assert!(through.contains("not a mapping"), "{through}");
    }

    #[test]
    fn overrides_are_picked_by_prefix() {
        let vars = [
            ("POLYGRAPH_GATEWAY__URL", "a"),
            ("POLYGRAPH_GATEWAY_CONFIG", "b"),
            ("POLYGRAPH_GATEWAY__", "c"),
            ("OTHER__URL", "d"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let picked = overrides("POLYGRAPH_GATEWAY", vars);
        assert_eq!(
            picked,
            [("POLYGRAPH_GATEWAY__URL".to_owned(), "a".to_owned())]
        );
    }
}
