//! Policies in Rego, evaluated in process with regorus (OPA's language, no OPA server).
//!
//! Every `.rego` file under the policies folder is loaded; a policy named in the supergraph
//! (`@policy(policies: [["shop.orders.insert_own"]])`) is the rule at that path under `data`
//! (`data.shop.orders.insert_own`), and allows exactly when it evaluates to `true` — undefined,
//! `false`, anything else or an error denies. Its input is what [`crate::authorize`] describes:
//! the session, the operation, the field's coordinate, its arguments and its subgraphs.
//!
//! The folder is watched (its files' sizes and modification times, every two seconds): a
//! change loads the whole set again, and a set that fails to parse leaves the old one in force,
//! with the reason logged. `polygraph policy test` runs the `test_*` rules of every package, as
//! `opa test` does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::authorize::Decider;

/// A loaded set of policies.
struct Set {
    /// Parsed and prepared once; cloned for evaluations (a clone shares the parsed modules).
    engine: regorus::Engine,
    /// Clones done evaluating, kept for the next ones: an evaluation resets an engine's state,
    /// and cloning one per decision was most of what a decision cost.
    idle: std::sync::Mutex<Vec<regorus::Engine>>,
    /// What the folder held when loaded: path, size and modification time per file.
    stamp: Vec<(PathBuf, u64, Option<SystemTime>)>,
    /// The `test_*` rules, as `data.package.test_name`.
    tests: Vec<String>,
}

/// The policies of one folder, reloaded when it changes.
pub struct Policies {
    folder: PathBuf,
    current: ArcSwap<Set>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

impl Policies {
    /// Loads every `.rego` file under `folder`.
    pub fn load(folder: &Path) -> Result<Self, String> {
        let set = load_set(folder)?;
        Ok(Self {
            folder: folder.to_owned(),
            current: ArcSwap::from_pointee(set),
        })
    }

    /// Checks that each name is a rule of the loaded set.
    pub fn check_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), String> {
        let set = self.current.load();
        for name in names {
            let path = rule_path(name)?;
            let mut engine = set.engine.clone();
            engine.set_input(regorus::Value::new_object());
            if let Err(error) = engine.eval_rule(path.clone()) {
                return Err(format!(
                    "the supergraph names policy {name:?}, but {path} is not a rule of the policies in {}: {error}",
                    self.folder.display()
                ));
            }
        }
        Ok(())
    }

    /// Watches the folder and loads the set again when a file changes; stops when the
    /// policies are dropped.
    pub fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let Some(this) = weak.upgrade() else { return };
                let stamp = stamp(&this.folder);
                if stamp == this.current.load().stamp {
                    continue;
                }
                match load_set(&this.folder) {
                    Ok(set) => {
                        tracing::info!(folder = %this.folder.display(), tests = set.tests.len(), "policies reloaded");
                        eprintln!(
                            "polygraph gateway: policies reloaded from {}",
                            this.folder.display()
                        );
                        this.current.store(Arc::new(set));
                    }
                    Err(error) => {
                        tracing::error!(folder = %this.folder.display(), %error, "the changed policies do not load; the previous set stays in force");
                        eprintln!(
                            "polygraph gateway: the changed policies do not load, keeping the previous set: {error}"
                        );
                        // Do not try the same broken files every two seconds.
                        let mut kept = Set::clone(&this.current.load());
                        kept.stamp = stamp;
                        this.current.store(Arc::new(kept));
                    }
                }
            }
        });
    }

    /// Which policies are in force: changes whenever they are reloaded.
    pub fn revision(&self) -> String {
        let set = self.current.load();
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&set.stamp, &mut hasher);
        format!("{:016x}", std::hash::Hasher::finish(&hasher))
    }

    /// Runs every `test_*` rule; returns (rule, passed) in order.
    pub fn run_tests(&self) -> Vec<(String, Result<bool, String>)> {
        let set = self.current.load();
        set.tests
            .iter()
            .map(|test| {
                let mut engine = set.engine.clone();
                engine.set_input(regorus::Value::new_object());
                let outcome = engine
                    .eval_rule(test.clone())
                    .map(|value| value == regorus::Value::from(true))
                    .map_err(|error| error.to_string());
                (test.clone(), outcome)
            })
            .collect()
    }
}

impl Decider for Policies {
    fn allows(&self, policy: &str, input: &serde_json::Value) -> Result<bool, String> {
        let path = rule_path(policy)?;
        let set = self.current.load();
        let idle = || {
            set.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut engine = idle().pop().unwrap_or_else(|| set.engine.clone());
        engine.set_input(regorus::Value::from(input.clone()));
        let value = engine.eval_rule(path);
        let mut idle = idle();
        if idle.len() < IDLE_ENGINES {
            idle.push(engine);
        }
        drop(idle);
        Ok(value.map_err(|error| error.to_string())? == regorus::Value::from(true))
    }
}

impl Clone for Set {
    /// The same policies, with no idle engines of their own.
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            idle: std::sync::Mutex::new(Vec::new()),
            stamp: self.stamp.clone(),
            tests: self.tests.clone(),
        }
    }
}

/// Most engines kept between evaluations: about as many as decisions run at once.
const IDLE_ENGINES: usize = 16;

/// `data.a.b` for the policy name `a.b`; names are dotted Rego identifiers.
fn rule_path(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid {
        Ok(format!("data.{name}"))
    } else {
        Err(format!(
            "policy name {name:?} is not a dotted Rego rule path such as shop.orders.insert_own"
        ))
    }
}

/// The `.rego` files under `folder`, sorted, with their sizes and modification times. Hidden
/// entries are skipped: a Kubernetes config map mounts its files as links into a hidden
/// `..2026_…` folder, which would otherwise be read a second time. Links are followed, so a
/// config map's update shows as a change.
fn stamp(folder: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_owned()];
    // Folders already read, by real path: a link back up the tree is read once.
    let mut seen = std::collections::HashSet::new();
    while let Some(dir) = pending.pop() {
        if !seen.insert(std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone())) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rego") {
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

fn load_set(folder: &Path) -> Result<Set, String> {
    let stamp = stamp(folder);
    if !folder.is_dir() {
        return Err(format!("{} is not a folder", folder.display()));
    }
    let mut engine = regorus::Engine::new();
    let mut tests = Vec::new();
    for (path, _, _) in &stamp {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading {}: {error}", path.display()))?;
        let package = engine
            .add_policy(path.display().to_string(), text.clone())
            .map_err(|error| format!("{error}"))?;
        for name in test_rules(&text) {
            let rule = format!("{package}.{name}");
            if !tests.contains(&rule) {
                tests.push(rule);
            }
        }
    }
    // Evaluating once prepares the engine; clones made afterwards start prepared.
    engine.set_input(regorus::Value::new_object());
    let _ = engine.eval_rule("data".to_owned());
    Ok(Set {
        engine,
        idle: std::sync::Mutex::new(Vec::new()),
        stamp,
        tests,
    })
}

/// The names of the `test_*` rules a module defines at the start of a line.
fn test_rules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("test_") else {
            continue;
        };
        let tail: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let name = format!("test_{tail}");
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
package shop.orders

import rego.v1

default insert_own := false

insert_own if {
    input.session.sub != null
    every order in input.arguments.objects {
        order.user_id == input.session.sub
    }
}

test_own_orders_pass if {
    insert_own with input as {"session": {"sub": "1"}, "arguments": {"objects": [{"user_id": "1"}]}}
}

test_other_orders_fail if {
    not insert_own with input as {"session": {"sub": "1"}, "arguments": {"objects": [{"user_id": "2"}]}}
}
"#;

    fn folder(files: &[(&str, &str)]) -> PathBuf {
        // One folder per call: tests run at the same time in one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "polygraph-policies-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn rules_decide_by_input_and_tests_run() {
        let dir = folder(&[("orders.rego", POLICY)]);
        let policies = Policies::load(&dir).unwrap();
        let own = serde_json::json!({"session": {"sub": "1"}, "arguments": {"objects": [{"user_id": "1"}]}});
        let other = serde_json::json!({"session": {"sub": "1"}, "arguments": {"objects": [{"user_id": "2"}]}});
        assert_eq!(policies.allows("shop.orders.insert_own", &own), Ok(true));
        assert_eq!(policies.allows("shop.orders.insert_own", &other), Ok(false));
        assert!(
            policies.allows("shop.orders.missing", &own).is_err(),
            "a rule nobody wrote denies"
        );
        assert!(policies.allows("not a path", &own).is_err());
        let results = policies.run_tests();
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|(_, outcome)| *outcome == Ok(true)),
            "{results:?}"
        );
        assert!(
            policies
                .check_names([&"shop.orders.insert_own".to_owned()])
                .is_ok()
        );
        assert!(
            policies
                .check_names([&"shop.nothing.here".to_owned()])
                .is_err()
        );
    }

    /// As a Kubernetes config map mounts files: the real ones in a hidden timestamped folder,
    /// links to them beside it.
    #[cfg(unix)]
    #[test]
    fn configmap_mounts_are_read_once_through_their_links() {
        let dir = folder(&[]);
        let hidden = dir.join("..2026_12_06_00_00_00.1");
        std::fs::create_dir(&hidden).unwrap();
        std::fs::write(hidden.join("orders.rego"), POLICY).unwrap();
        std::os::unix::fs::symlink(&hidden, dir.join("..data")).unwrap();
        std::os::unix::fs::symlink(dir.join("..data/orders.rego"), dir.join("orders.rego"))
            .unwrap();
        // A link back up the tree is not followed round and round.
        std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
        let policies = Policies::load(&dir).unwrap();
        assert_eq!(policies.run_tests().len(), 2, "each test once");
    }

    #[test]
    fn a_set_that_does_not_parse_is_refused() {
        let dir = folder(&[("broken.rego", "package broken\n\nallow if {\n")]);
        assert!(Policies::load(&dir).is_err());
    }
}
