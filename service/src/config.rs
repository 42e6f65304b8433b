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

/// `url` without its secrets, for messages and logs: `scheme://user:***@host…`. A user alone
/// (`https://TOKEN@host`) may be a token and is hidden too, as are the values of query keys
/// that name a password, secret, token, key or credential. Userinfo runs to the last `@`, so
/// a password with `/`, `?` or `#` in it is hidden whole.
pub fn redacted_url(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        // Not a URL: kept, unless it could hold credentials.
        return if url.contains('@') {
            "***".to_owned()
        } else {
            url.to_owned()
        };
    };
    let (start, rest) = url.split_at(scheme + 3);
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map(|(user, _)| user);
            (
                Some(user.map_or_else(|| "***".to_owned(), |user| format!("{user}:***"))),
                &rest[at..],
            )
        }
        None => (None, rest),
    };
    let rest = match rest.split_once('?') {
        Some((before, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{before}?{}", pairs.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{start}{}{rest}", userinfo.unwrap_or_default())
}

/// Whether a URL's query key names a secret (`password`, `sslpassword`, `api_key`, `token`,
/// MongoDB's `authMechanismProperties`, which can carry a session token).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "key",
        "credential",
        "authmechanismproperties",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// Reads the YAML file at `path` into `T`: `${NAME}` expanded, `PREFIX__…` overrides from the
/// process environment applied (their names, never their values, are logged).
pub fn from_file<T: DeserializeOwned>(path: &Path, prefix: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let overrides = overrides(prefix, environment());
    if !overrides.is_empty() {
        let names: Vec<&str> = overrides.iter().map(|(name, _)| name.as_str()).collect();
        tracing::info!(file = %path.display(), overrides = ?names, "configuration overrides");
    }
    from_text(
        &text,
        &path.display().to_string(),
        &|name| std::env::var(name).ok(),
        &overrides,
    )
}

/// The process environment; a value that is not UTF-8 is read lossily (a setting it reaches
/// then fails to parse, by name), and never makes reading the environment panic.
pub fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    })
}

/// The `PREFIX__…` variables among `vars`, as (variable, value) pairs, sorted.
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
///
/// The YAML's structure is read first; `${NAME}` is then replaced inside string values only,
/// so an environment value can never add keys or change the document's shape. A value that is
/// exactly one `${NAME}` takes the variable's number or `true`/`false` as that, for numeric
/// and boolean settings. Error messages say what kind of value was wrong, never the value.
pub fn from_text<T: DeserializeOwned>(
    text: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &[(String, String)],
) -> Result<T, ConfigError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    if !text.contains("${") && overrides.is_empty() {
        return typed_from_text::<T>(text, path);
    }
    let mut tree: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|error| located(path, String::new(), &error))?;
    if tree.is_null() {
        tree = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
    }
    expand_values(&mut tree, env, &mut Vec::new()).map_err(|(key, message)| {
        ConfigError::Invalid {
            path: path.to_owned(),
            origin: Origin::File {
                line: line_of(text, &key),
                column: None,
            },
            key,
            message,
        }
    })?;
    for (variable, value) in overrides {
        apply(&mut tree, variable, value).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            key: key_of(variable),
            origin: Origin::Environment(variable.clone()),
            message,
        })?;
    }
    // Read back through YAML text, as a file is read: a number where a string is wanted (a
    // password of digits) is then that string.
    let regenerated = serde_yaml::to_string(&tree).expect("a YAML value is printable");
    typed_from_text::<T>(&regenerated, path).map_err(|error| match error {
        ConfigError::Invalid { key, message, .. } => {
            let variable = overrides
                .iter()
                .map(|(variable, _)| variable)
                .find(|variable| {
                    let set = key_of(variable);
                    key == set
                        || key.starts_with(&format!("{set}."))
                        || key.starts_with(&format!("{set}["))
                        || (set.starts_with(&format!("{key}."))
                            && message.contains("unknown field"))
                });
            let origin = variable.map_or_else(
                || Origin::File {
                    line: line_of(text, &key),
                    column: None,
                },
                |variable| Origin::Environment(variable.clone()),
            );
            ConfigError::Invalid {
                path: path.to_owned(),
                key,
                origin,
                message,
            }
        }
        read @ ConfigError::Read { .. } => read,
    })
}

/// Replaces `${NAME}` in every string value under `node` (keys are left alone); `at` is the
/// key path so far. Errors give the key path and what is wrong.
fn expand_values(
    node: &mut serde_yaml::Value,
    env: &dyn Fn(&str) -> Option<String>,
    at: &mut Vec<String>,
) -> Result<(), (String, String)> {
    match node {
        serde_yaml::Value::String(text) if text.contains("${") => {
            let expanded = expand(text, env).map_err(|(_, message)| (at.join("."), message))?;
            let whole =
                text.starts_with("${") && text.ends_with('}') && text.matches("${").count() == 1;
            *node = match serde_yaml::from_str::<serde_yaml::Value>(&expanded) {
                Ok(typed @ (serde_yaml::Value::Number(_) | serde_yaml::Value::Bool(_)))
                    if whole =>
                {
                    typed
                }
                _ => serde_yaml::Value::String(expanded),
            };
        }
        serde_yaml::Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                at.push(format!("[{index}]"));
                let result = expand_values(item, env, at);
                at.pop();
                result?;
            }
        }
        serde_yaml::Value::Mapping(mapping) => {
            for (key, value) in mapping.iter_mut() {
                at.push(key.as_str().unwrap_or("?").to_owned());
                let result = expand_values(value, env, at);
                at.pop();
                result?;
            }
        }
        serde_yaml::Value::Tagged(tagged) => expand_values(&mut tagged.value, env, at)?,
        _ => {}
    }
    Ok(())
}

/// The 1-based line of the deepest key of `key` (`limits.max_depth`, `series[0].entity`) in
/// block-style YAML, as far as it can be followed; sequence positions are not told apart.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let wanted: Vec<&str> = key
        .split('.')
        .map(|part| part.split('[').next().unwrap_or_default())
        .filter(|part| !part.is_empty())
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        let mut body = trimmed;
        while let Some(rest) = body.strip_prefix("- ") {
            let rest_trimmed = rest.trim_start();
            indent += body.len() - rest_trimmed.len();
            body = rest_trimmed;
        }
        let Some((name, _)) = body.split_once(':') else {
            continue;
        };
        let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
        while stack.last().is_some_and(|(depth, _)| *depth >= indent) {
            stack.pop();
        }
        stack.push((indent, name.to_owned()));
        let matched = stack.len() <= wanted.len()
            && stack
                .iter()
                .zip(&wanted)
                .all(|((_, name), want)| name == want);
        if matched && best.is_none_or(|(depth, _)| stack.len() > depth) {
            best = Some((stack.len(), index + 1));
        }
    }
    best.map(|(_, line)| line)
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
        message: without_values(&message),
    }
}

/// `message` without the value it quotes: a value can be a password from the environment.
/// `invalid type: string "hunter2", expected u16` → `invalid type: string, expected u16`.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "unknown variant "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest.split_once(", expected").unwrap_or((rest, ""));
            let kind = found
                .split(['"', '`'])
                .next()
                .unwrap_or_default()
                .trim_end();
            let expected = if expected.is_empty() {
                String::new()
            } else {
                format!(", expected{expected}")
            };
            return if kind.is_empty() {
                format!("{}{expected}", prefix.trim_end().trim_end_matches(':'))
            } else {
                format!("{prefix}{kind}{expected}")
            };
        }
    }
    message.to_owned()
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
            // A section set whole replaces the file's, as in YAML: that is how a map of
            // tables or subgraphs is narrowed (the keys it leaves out take their defaults).
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
                return Err((number, "`${…}` does not name a variable".to_owned()));
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
            "gateway.yaml:2: `url`: the environment variable MISSING is not set"
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
    fn an_environment_value_never_becomes_structure_or_an_error_message() {
        let env = |name: &str| match name {
            "PW" => Some("x\rlimits: {max_depth: 1}".to_owned()),
            "FLOW" => Some("a, limits: {max_depth: 1}}".to_owned()),
            "DIGITS" => Some("12345678".to_owned()),
            "DEPTH" => Some("7".to_owned()),
            _ => None,
        };
        for (text, url) in [
            ("url: ${PW}\n", "x\rlimits: {max_depth: 1}"),
            ("url: \"${FLOW}\"\n", "a, limits: {max_depth: 1}}"),
            ("url: pre-${DIGITS}\n", "pre-12345678"),
            ("url: ${DIGITS}\n", "12345678"),
        ] {
            let settings: Settings = from_text(text, "g.yaml", &env, &[]).unwrap();
            assert_eq!(settings.url, url, "{text}");
            assert_eq!(settings.limits.max_depth, 10, "{text}");
            // The same with an override present (the file then goes through a YAML tree).
            let overrides = [("P__LIMITS__NAMES".to_owned(), "[a]".to_owned())];
            let settings: Settings = from_text(text, "g.yaml", &env, &overrides).unwrap();
            assert_eq!(settings.url, url, "{text}");
        }
        let depth: Settings =
            from_text("limits:\n  max_depth: ${DEPTH}\n", "g.yaml", &env, &[]).unwrap();
        assert_eq!(depth.limits.max_depth, 7);
        let wrong =
            from_text::<Settings>("url: x\nlimits:\n  max_depth: ${PW}\n", "g.yaml", &env, &[])
                .unwrap_err()
                .to_string();
        assert!(
            wrong.starts_with("g.yaml:3")
                && wrong.contains("`limits.max_depth`")
                && !wrong.contains("x\r"),
            "{wrong}"
        );
        let secret = parse("limits:\n  max_depth: hunter2\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            !secret.contains("hunter2") && secret.contains("invalid type: string"),
            "{secret}"
        );
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
    fn a_section_set_whole_replaces_the_files() {
        let settings = parse(
            "url: x\nlimits:\n  max_depth: 3\n  names: [a]\n",
            &[("POLYGRAPH_GATEWAY__LIMITS", "{names: [b, c]}")],
        )
        .unwrap();
        assert_eq!(settings.limits.names, ["b", "c"]);
        assert_eq!(
            settings.limits.max_depth, 10,
            "a key left out takes its default"
        );
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
