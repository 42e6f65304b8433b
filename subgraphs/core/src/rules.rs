//! Row rules: which rows (or documents) a request may see and write, from its verified claims.
//!
//! A rule is a conjunction of `field = claims.name` (the field equals the claim) and
//! `field in claims.name` (the field is one of the claim's values), e.g.
//! `user_id = claims.sub and region in claims.regions`. Reads see [`RowRule::restriction`]
//! added to their filter; writes must stay inside it ([`RowRule::admits`]). A missing claim
//! matches nothing: a rule never widens what a request sees.

use async_graphql::Value;

use crate::claims::Claims;
use crate::filter::{BoolExp, Operator};

/// A parsed row rule: every condition must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRule {
    pub conditions: Vec<RuleCondition>,
}

/// One condition of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCondition {
    /// The ruled field's GraphQL name.
    pub field: String,
    /// `in` (one of the claim's values) rather than `=`.
    pub any_of: bool,
    pub claim: String,
}

/// A claim as text, the way values are compared when a write is checked.
fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The rule and claims a read goes by: `None` when nothing is ruled, an `UNAUTHENTICATED`
/// error when something is and the request carries no verified claims. `what` names what the
/// rule guards, as the error says it (`"Review documents"`).
pub fn ruled<'r, 'c>(
    rule: Option<&'r RowRule>,
    claims: Option<&'c Claims>,
    what: &str,
) -> async_graphql::Result<Option<(&'r RowRule, &'c Claims)>> {
    use async_graphql::ErrorExtensions as _;
    let Some(rule) = rule else {
        return Ok(None);
    };
    let Some(claims) = claims else {
        return Err(async_graphql::Error::new(format!(
            "{what} are visible only to requests with verified claims"
        ))
        .extend_with(|_, extensions| extensions.set("code", "UNAUTHENTICATED")));
    };
    Ok(Some((rule, claims)))
}

impl RowRule {
    /// Parses a rule for stores that know their entries by the entity's key alone (feature
    /// hashes, graph nodes): its conditions may name only `id`.
    pub fn parse_on_id(text: &str) -> Result<Self, String> {
        Self::parse(text, |stored| (stored == "id").then(|| "id".to_owned()))
            .map_err(|message| format!("{message} (rules here name id)"))
    }

    /// Whether the entity keyed `id` is one `claims` may see, for a rule from
    /// [`RowRule::parse_on_id`].
    pub fn holds_for_id(&self, claims: &Claims, id: &str) -> bool {
        let id = serde_json::Value::String(id.to_owned());
        self.holds(claims, |field| (field == "id").then_some(&id))
    }

    /// Parses `a = claims.x and b in claims.y`; `field_of` maps a stored name (column, document
    /// field) to its GraphQL field, or says there is none.
    pub fn parse(text: &str, field_of: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let conditions = text
            .split(" and ")
            .map(|term| {
                let words: Vec<&str> = term.split_whitespace().collect();
                let [stored, operator, claim] = words.as_slice() else {
                    return Err(format!("expected `field = claims.name`, found {term:?}"));
                };
                let any_of = match *operator {
                    "=" => false,
                    "in" => true,
                    other => return Err(format!("unknown operator {other:?} (use = or in)")),
                };
                let claim = claim
                    .strip_prefix("claims.")
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| format!("{claim:?} must name a claim as claims.<name>"))?;
                let field = field_of(stored).ok_or_else(|| format!("no field {stored:?}"))?;
                Ok(RuleCondition {
                    field,
                    any_of,
                    claim: claim.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { conditions })
    }

    /// The values `condition` lets its field hold for `claims`: the claim's value for `=`, its
    /// values for `in`; `None` (nothing matches) when the claim is missing, null, or of the
    /// wrong shape (a list for `=`, a scalar for `in`).
    pub fn values<'c>(
        condition: &RuleCondition,
        claims: &'c Claims,
    ) -> Option<&'c serde_json::Value> {
        match (claims.get(&condition.claim), condition.any_of) {
            (Some(value @ serde_json::Value::Array(_)), true) => Some(value),
            (Some(value), false) if is_scalar(value) => Some(value),
            _ => None,
        }
    }

    /// Whether a stored row or document (`read` gives a field's value) is one `claims` may see,
    /// comparing values as text (`3` is `"3"`), as [`RowRule::admits`] does.
    pub fn holds<'v>(
        &self,
        claims: &Claims,
        read: impl Fn(&str) -> Option<&'v serde_json::Value>,
    ) -> bool {
        self.conditions.iter().all(|condition| {
            let (Some(allowed), Some(stored)) =
                (Self::values(condition, claims), read(&condition.field))
            else {
                return false;
            };
            let stored = claim_text(stored);
            match allowed {
                serde_json::Value::Array(items) => items
                    .iter()
                    .any(|item| is_scalar(item) && claim_text(item) == stored),
                value => claim_text(value) == stored,
            }
        })
    }

    /// The rows `claims` may see, as a filter on the rule's fields (see [`RowRule::values`]).
    pub fn restriction(&self, claims: &Claims) -> BoolExp {
        BoolExp::And(
            self.conditions
                .iter()
                .map(|condition| {
                    let Some(value) = Self::values(condition, claims) else {
                        return BoolExp::Or(Vec::new());
                    };
                    BoolExp::Compare {
                        field: condition.field.clone(),
                        operator: if condition.any_of {
                            Operator::In
                        } else {
                            Operator::Eq
                        },
                        value: Value::from_json(value.clone()).unwrap_or(Value::Null),
                    }
                })
                .collect(),
        )
    }

    /// Whether a row written with these values stays visible to `claims`: every ruled field the
    /// write sets (`written`) must hold the claim's value (or one of them, for `in`); an insert
    /// (`complete`) must set every ruled field. Values of `integral` fields compare as integers
    /// (`"003"` is `3`).
    pub fn admits<'v>(
        &self,
        claims: &Claims,
        complete: bool,
        written: impl Fn(&str) -> Option<&'v Value>,
        integral: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        for condition in &self.conditions {
            let Some(value) = written(&condition.field) else {
                if complete {
                    return Err(format!(
                        "{} must be set: a row rule restricts it",
                        condition.field
                    ));
                }
                continue;
            };
            let integral = integral(&condition.field);
            let normalize = |text: String| -> String {
                if integral {
                    text.trim().parse::<i64>().map_or(text, |n| n.to_string())
                } else {
                    text
                }
            };
            let written = match value {
                Value::String(text) => normalize(text.clone()),
                other => normalize(other.to_string()),
            };
            let allowed: Vec<String> = match Self::values(condition, claims) {
                Some(serde_json::Value::Array(items)) => {
                    items.iter().map(claim_text).map(normalize).collect()
                }
                Some(value) => vec![normalize(claim_text(value))],
                None => Vec::new(),
            };
            if !allowed.contains(&written) {
                return Err(format!(
                    "{} = {written} is outside what this request may write",
                    condition.field
                ));
            }
        }
        Ok(())
    }
}

fn is_scalar(value: &serde_json::Value) -> bool {
    matches!(
        value,
        serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::value;

    fn rule() -> RowRule {
        RowRule::parse(
            "user_id = claims.sub and status in claims.statuses",
            |stored| {
                ["user_id", "status"]
                    .contains(&stored)
                    .then(|| stored.to_owned())
            },
        )
        .unwrap()
    }

    fn claims(json: serde_json::Value) -> Claims {
        match json {
            serde_json::Value::Object(map) => Claims(map),
            other => panic!("claims are an object, not {other}"),
        }
    }

    #[test]
    fn rules_parse_or_say_why_not() {
        assert_eq!(
            rule().conditions,
            vec![
                RuleCondition {
                    field: "user_id".into(),
                    any_of: false,
                    claim: "sub".into()
                },
                RuleCondition {
                    field: "status".into(),
                    any_of: true,
                    claim: "statuses".into()
                },
            ]
        );
        for bad in [
            "user_id == claims.sub",
            "nope = claims.sub",
            "user_id = sub",
            "user_id = claims.",
            "user_id",
        ] {
            assert!(
                RowRule::parse(bad, |stored| (stored == "user_id").then(|| stored.into())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn restrictions_match_nothing_without_the_claim() {
        let full = rule().restriction(&claims(
            serde_json::json!({ "sub": "3", "statuses": ["paid"] }),
        ));
        assert_eq!(
            full,
            BoolExp::And(vec![
                BoolExp::Compare {
                    field: "user_id".into(),
                    operator: Operator::Eq,
                    value: value!("3")
                },
                BoolExp::Compare {
                    field: "status".into(),
                    operator: Operator::In,
                    value: value!(["paid"])
                },
            ])
        );
        // No sub, a list where one value is expected, a scalar where a list is.
        for json in [
            serde_json::json!({ "statuses": ["paid"] }),
            serde_json::json!({ "sub": ["3", "4"], "statuses": ["paid"] }),
            serde_json::json!({ "sub": null, "statuses": ["paid"] }),
        ] {
            let BoolExp::And(conditions) = rule().restriction(&claims(json.clone())) else {
                panic!("a conjunction")
            };
            assert_eq!(conditions[0], BoolExp::Or(Vec::new()), "{json}");
        }
        let BoolExp::And(conditions) = rule().restriction(&claims(
            serde_json::json!({ "sub": "3", "statuses": "paid" }),
        )) else {
            panic!("a conjunction")
        };
        assert_eq!(conditions[1], BoolExp::Or(Vec::new()));
    }

    #[test]
    fn stored_rows_are_checked_as_text() {
        let rule = rule();
        let claims = claims(serde_json::json!({ "sub": 3, "statuses": ["paid"] }));
        let row = |user: serde_json::Value, status: &str| serde_json::json!({ "user_id": user, "status": status });
        let holds = |row: &serde_json::Value| rule.holds(&claims, |field| row.get(field));
        assert!(holds(&row(serde_json::json!("3"), "paid")));
        assert!(holds(&row(serde_json::json!(3), "paid")));
        assert!(!holds(&row(serde_json::json!(4), "paid")));
        assert!(!holds(&row(serde_json::json!(3), "refunded")));
        assert!(
            !holds(&serde_json::json!({ "status": "paid" })),
            "a missing field"
        );
        let nobody = self::claims(serde_json::json!({ "statuses": ["paid"] }));
        let stored = row(serde_json::json!(3), "paid");
        assert!(
            !rule.holds(&nobody, |field| stored.get(field)),
            "no sub, no rows"
        );
    }

    #[test]
    fn key_rules_and_reads_without_claims() {
        let rule = RowRule::parse_on_id("id in claims.accounts").unwrap();
        assert!(RowRule::parse_on_id("owner = claims.sub").is_err());
        let claims = claims(serde_json::json!({ "accounts": ["7", 8] }));
        assert!(rule.holds_for_id(&claims, "7") && rule.holds_for_id(&claims, "8"));
        assert!(!rule.holds_for_id(&claims, "9"));
        assert!(ruled(None, None, "x").unwrap().is_none(), "nothing ruled");
        assert!(ruled(Some(&rule), Some(&claims), "x").unwrap().is_some());
        let refused = ruled(Some(&rule), None, "User features").unwrap_err();
        assert_eq!(
            refused.message,
            "User features are visible only to requests with verified claims"
        );
    }

    #[test]
    fn writes_must_stay_inside_the_rule() {
        let claims = claims(serde_json::json!({ "sub": 3, "statuses": ["paid", "pending"] }));
        let rule = rule();
        let check = |user: Option<Value>, status: Option<Value>, complete: bool| {
            rule.admits(
                &claims,
                complete,
                |field| match field {
                    "user_id" => user.as_ref(),
                    _ => status.as_ref(),
                },
                |field| field == "user_id",
            )
        };
        assert!(check(Some(value!("3")), Some(value!("paid")), true).is_ok());
        assert!(check(Some(value!("003")), Some(value!("pending")), true).is_ok());
        assert!(check(Some(value!(3)), Some(value!("pending")), true).is_ok());
        assert!(check(Some(value!("7")), Some(value!("paid")), true).is_err());
        assert!(check(Some(value!("3")), Some(value!("shipped")), true).is_err());
        assert!(
            check(Some(value!("3")), None, true).is_err(),
            "inserts set every ruled field"
        );
        assert!(
            check(None, Some(value!("paid")), false).is_ok(),
            "updates may leave them"
        );
        assert!(
            check(Some(value!(7)), None, false).is_err(),
            "but not move rows away"
        );
    }
}
