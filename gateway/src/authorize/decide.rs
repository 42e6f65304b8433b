//! Deciding the guards of a request: scopes held by the session, and policies asked of the
//! Rego decider with the session, the operation, the field and its arguments as input, each
//! decision memoized per request and the input bounded in bytes.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Decides policies by name for an input (see [`crate::policy`]).
pub trait Decider: Send + Sync {
    /// Whether `policy` allows the access `input` describes; an error denies.
    fn allows(&self, policy: &str, input: &serde_json::Value) -> Result<bool, String>;
}

/// What [`decide`] needs to know about the request.
pub struct Context<'a> {
    pub session: Option<&'a Session>,
    pub operation_name: Option<&'a str>,
    pub kind: OperationType,
    pub variables: &'a JsonMap,
    pub decider: Option<&'a dyn Decider>,
}

/// Most bytes of policy input (arguments, mostly) one request may have built: past it, the
/// remaining policy checks deny. With the per-guard sharing, this bounds the work a request
/// can cause by repeating a large variable in many guarded places.
pub(super) const POLICY_INPUT_BUDGET: usize = 8 << 20;

/// The numbers of the guarded selections the request may not make.
pub fn decide(guards: &[Guard], context: &Context<'_>) -> Vec<u32> {
    let mut state = Deciding {
        memo: HashMap::new(),
        session_json: None,
        budget: POLICY_INPUT_BUDGET,
    };
    let mut denied = Vec::new();
    for guard in guards {
        let allowed = guard
            .requirements
            .iter()
            .all(|requirement| allows(requirement, guard, context, &mut state));
        if !allowed {
            denied.push(guard.id);
        }
    }
    denied
}

/// Policy decisions made so far in one request.
pub(super) struct Deciding<'g> {
    /// By policy and the guard whose decisions are shared.
    memo: HashMap<(&'g str, u32), bool>,
    session_json: Option<serde_json::Value>,
    /// Bytes of policy input left to build.
    budget: usize,
}

pub(super) fn allows<'g>(
    requirement: &'g Requirement,
    guard: &Guard,
    context: &Context<'_>,
    state: &mut Deciding<'g>,
) -> bool {
    if (requirement.authenticated || !requirement.scopes.is_empty()) && context.session.is_none() {
        return false;
    }
    let held = |scope: &String| {
        context
            .session
            .is_some_and(|session| session.scopes.contains(scope))
    };
    let scopes = requirement
        .scopes
        .iter()
        .all(|groups| groups.iter().any(|group| group.iter().all(held)));
    if !scopes {
        return false;
    }
    if requirement.policies.is_empty() {
        return true;
    }
    let Some(decider) = context.decider else {
        return false;
    };
    // The input is built on the first decision not already made, and only once.
    let mut input: Option<Option<serde_json::Value>> = None;
    let mut decide = |policy: &'g String| {
        let key = (policy.as_str(), guard.share);
        if let Some(known) = state.memo.get(&key) {
            return *known;
        }
        let input = input.get_or_insert_with(|| policy_input(guard, context, state));
        let allowed = match input {
            None => {
                tracing::warn!(%policy, coordinate = %guard.coordinate, "the request's policy input is over its budget; denied");
                false
            }
            Some(input) => match decider.allows(policy, input) {
                Ok(allowed) => allowed,
                Err(error) => {
                    tracing::warn!(%policy, coordinate = %guard.coordinate, %error, "policy evaluation failed; denied");
                    false
                }
            },
        };
        state.memo.insert(key, allowed);
        allowed
    };
    requirement
        .policies
        .iter()
        .all(|groups| groups.iter().any(|group| group.iter().all(&mut decide)))
}

/// What a policy is asked about `guard`, or `None` when building it would go over the
/// request's budget.
pub(super) fn policy_input(
    guard: &Guard,
    context: &Context<'_>,
    state: &mut Deciding<'_>,
) -> Option<serde_json::Value> {
    let mut arguments = serde_json::Map::new();
    for definition in &guard.definitions {
        let given = guard
            .arguments
            .iter()
            .find(|argument| argument.name == definition.name)
            .and_then(|argument| match &*argument.value {
                // A variable the request left out counts as an argument left out.
                Value::Variable(name) if !context.variables.contains_key(name.as_str()) => None,
                value => Some(value),
            });
        let Some(value) = given.or(definition.default_value.as_deref()) else {
            continue;
        };
        let mut value = value_json(value, context.variables, &mut state.budget)?;
        // Input coercion: a single value where a list is expected is a list of one.
        if definition.ty.is_list() && !value.is_null() && !value.is_array() {
            value = serde_json::Value::Array(vec![value]);
        }
        arguments.insert(definition.name.to_string(), value);
    }
    let session = state.session_json.get_or_insert_with(|| {
        context
            .session
            .map_or(serde_json::Value::Null, Session::to_json)
    });
    let (type_name, field_name) = guard
        .coordinate
        .split_once('.')
        .unwrap_or((guard.coordinate.as_str(), ""));
    Some(serde_json::json!({
        "session": session,
        "operation": {
            "name": context.operation_name,
            "kind": match context.kind {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            },
        },
        "coordinate": guard.coordinate,
        "type": type_name,
        "field": field_name,
        "arguments": arguments,
        "subgraph": guard.subgraphs.first(),
        "subgraphs": guard.subgraphs,
    }))
}

/// An argument's value as JSON, variables replaced by the request's values; `None` once
/// `budget` (bytes, roughly) runs out.
pub(super) fn value_json(
    value: &Value,
    variables: &JsonMap,
    budget: &mut usize,
) -> Option<serde_json::Value> {
    spend(budget, 8)?;
    Some(match value {
        Value::Null => serde_json::Value::Null,
        Value::Enum(name) => serde_json::Value::from(name.as_str()),
        Value::Variable(name) => match variables.get(name.as_str()) {
            Some(value) => json_within(value, budget)?,
            None => serde_json::Value::Null,
        },
        Value::String(text) => {
            spend(budget, text.len())?;
            serde_json::Value::from(text.as_str())
        }
        Value::Float(number) => number
            .try_to_f64()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Int(number) => integer(number.as_str()),
        Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        Value::List(items) => items
            .iter()
            .map(|item| value_json(item, variables, budget))
            .collect::<Option<_>>()?,
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| {
                spend(budget, name.len())?;
                Some((name.to_string(), value_json(value, variables, budget)?))
            })
            .collect::<Option<serde_json::Map<_, _>>>()?
            .into(),
    })
}

/// Takes `bytes` from `budget`, or `None` when it has not that many left.
pub(super) fn spend(budget: &mut usize, bytes: usize) -> Option<()> {
    *budget = budget.checked_sub(bytes)?;
    Some(())
}

/// An integer literal as exactly as JSON can hold it: as an integer when it fits 64 bits.
pub(super) fn integer(text: &str) -> serde_json::Value {
    text.parse::<i64>()
        .map(serde_json::Value::from)
        .or_else(|_| text.parse::<u64>().map(serde_json::Value::from))
        .unwrap_or_else(|_| {
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        })
}

/// A variable's value as JSON, within `budget`.
pub(super) fn json_within(value: &JsonValue, budget: &mut usize) -> Option<serde_json::Value> {
    spend(budget, 8)?;
    Some(match value {
        JsonValue::Array(items) => items
            .iter()
            .map(|item| json_within(item, budget))
            .collect::<Option<_>>()?,
        JsonValue::Object(fields) => fields
            .iter()
            .map(|(name, value)| {
                spend(budget, name.as_str().len())?;
                Some((name.as_str().to_owned(), json_within(value, budget)?))
            })
            .collect::<Option<serde_json::Map<_, _>>>()?
            .into(),
        JsonValue::String(text) => {
            spend(budget, text.as_str().len())?;
            json_of(value)
        }
        _ => json_of(value),
    })
}

pub(super) fn json_of(value: &JsonValue) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
