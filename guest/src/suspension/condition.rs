//! Resume conditions: parsing ff-core's serde JSON of `ResumeCondition`, validating it (Valkey's
//! rules, which upstream SQLite skips), the names each waitpoint waits for, and evaluating it
//! against the signals delivered so far (reference §5).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::errors::{corruption, invalid_input};
use crate::types::EngineError;

/// The deepest a composite condition may nest (ff-core's `MAX_COMPOSITE_DEPTH`).
pub const MAX_COMPOSITE_DEPTH: usize = 4;

/// Which signals a `Single` or `Count` node accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Signals with exactly this name.
    ByName(String),
    /// Any signal.
    Wildcard,
}

impl Matcher {
    fn accepts(&self, signal: &Signal) -> bool {
        match self {
            Matcher::ByName(name) => signal.name == *name,
            Matcher::Wildcard => true,
        }
    }
}

/// What a `Count` node counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountKind {
    /// Distinct waitpoint keys with a matching signal.
    DistinctWaitpoints,
    /// Distinct matching signal ids.
    DistinctSignals,
    /// Distinct `(source_type, source_identity)` pairs of matching signals.
    DistinctSources,
}

/// ff-core's `ResumeCondition`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A signal under `key` that `matcher` accepts.
    Single {
        /// The waitpoint key.
        key: String,
        /// Which signals count.
        matcher: Matcher,
    },
    /// Only an operator's `resume_execution` ends the suspension.
    OperatorOnly,
    /// Only the timeout ends the suspension.
    TimeoutOnly,
    /// Every member holds.
    AllOf(Vec<Condition>),
    /// At least `n` distinct things (per `kind`) among the signals under `keys`.
    Count {
        /// The threshold.
        n: u32,
        /// What is counted.
        kind: CountKind,
        /// Which signals count (`None`: all).
        matcher: Option<Matcher>,
        /// The waitpoint keys looked at.
        keys: Vec<String>,
    },
}

/// One delivered signal, as the evaluator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its source kind.
    pub source_type: String,
    /// Its source identity.
    pub source_identity: String,
}

impl Condition {
    /// Parse the serde JSON of ff-core's `ResumeCondition`; anything else is `Err(reason)`.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let json: Json = serde_json::from_str(text).map_err(|error| error.to_string())?;
        Self::from_json(&json)
    }

    fn from_json(json: &Json) -> Result<Condition, String> {
        match json {
            Json::String(unit) if unit == "OperatorOnly" => Ok(Condition::OperatorOnly),
            Json::String(unit) if unit == "TimeoutOnly" => Ok(Condition::TimeoutOnly),
            Json::Object(map) if map.len() == 1 => {
                let (tag, body) = map.iter().next().expect("one entry");
                match tag.as_str() {
                    "Single" => Ok(Condition::Single {
                        key: string_field(body, "waitpoint_key")?,
                        matcher: matcher(body.get("matcher").ok_or("Single lacks matcher")?)?,
                    }),
                    "Composite" => composite(body),
                    other => Err(format!("unknown condition variant {other:?}")),
                }
            }
            other => Err(format!("not a resume condition: {other}")),
        }
    }

    /// Valkey's argument checks (`validate_suspend_args` and `validate_composite`), as
    /// `Validation(InvalidInput)` with its detail strings.
    pub fn validate(&self, has_timeout: bool) -> Result<(), EngineError> {
        if *self == Condition::TimeoutOnly && !has_timeout {
            return Err(invalid_input("timeout_only_without_deadline"));
        }
        self.validate_at(0, "<root>")
    }

    fn validate_at(&self, depth: usize, path: &str) -> Result<(), EngineError> {
        if depth > MAX_COMPOSITE_DEPTH {
            return Err(invalid_input(format!(
                "depth {depth} exceeds cap {MAX_COMPOSITE_DEPTH} at path {path}"
            )));
        }
        let empty_name = || {
            invalid_input("resume_condition: empty signal name (use Wildcard instead)".to_owned())
        };
        match self {
            Condition::Single { key, matcher } => {
                if key.is_empty() {
                    return Err(invalid_input(format!("empty waitpoint_key at path {path}")));
                }
                if *matcher == Matcher::ByName(String::new()) {
                    return Err(empty_name());
                }
            }
            Condition::OperatorOnly | Condition::TimeoutOnly => {}
            Condition::AllOf(members) => {
                if members.is_empty() {
                    return Err(invalid_input(format!("allof_empty_members at path {path}")));
                }
                for (index, member) in members.iter().enumerate() {
                    let child = if path == "<root>" {
                        format!("members[{index}]")
                    } else {
                        format!("{path}.members[{index}]")
                    };
                    member.validate_at(depth + 1, &child)?;
                }
            }
            Condition::Count {
                n,
                kind,
                matcher,
                keys,
            } => {
                if *n == 0 {
                    return Err(invalid_input(format!("count_n_zero at path {path}")));
                }
                if keys.is_empty() {
                    return Err(invalid_input(format!(
                        "count_waitpoints_empty at path {path}"
                    )));
                }
                if *kind == CountKind::DistinctWaitpoints && *n as usize > keys.len() {
                    return Err(invalid_input(format!(
                        "count_exceeds_waitpoint_set: n={n} > waitpoints.len()={} at path {path}",
                        keys.len()
                    )));
                }
                if *matcher == Some(Matcher::ByName(String::new())) {
                    return Err(empty_name());
                }
            }
        }
        Ok(())
    }

    /// The waitpoint keys the condition names, first occurrence first.
    pub fn referenced_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        self.collect_keys(&mut keys);
        keys
    }

    fn collect_keys(&self, keys: &mut Vec<String>) {
        let mut add = |key: &String| {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        };
        match self {
            Condition::Single { key, .. } => add(key),
            Condition::Count { keys: counted, .. } => counted.iter().for_each(add),
            Condition::AllOf(members) => members.iter().for_each(|m| m.collect_keys(keys)),
            Condition::OperatorOnly | Condition::TimeoutOnly => {}
        }
    }

    /// The signal names that can satisfy the waitpoint `key` (reference §5.2): empty means any.
    pub fn required_signal_names(&self, key: &str) -> Vec<String> {
        let mut names = Vec::new();
        self.collect_names(key, &mut names);
        let mut seen = BTreeSet::new();
        names.retain(|name| !name.is_empty() && seen.insert(name.clone()));
        names
    }

    fn collect_names(&self, key: &str, names: &mut Vec<String>) {
        match self {
            Condition::Single {
                key: single,
                matcher: Matcher::ByName(name),
            } if single == key => names.push(name.clone()),
            Condition::Single { .. } => {}
            Condition::OperatorOnly => names.push("__operator_only__".into()),
            Condition::TimeoutOnly => names.push("__timeout_only__".into()),
            Condition::AllOf(members) => members.iter().for_each(|m| m.collect_names(key, names)),
            Condition::Count {
                matcher: Some(Matcher::ByName(name)),
                keys,
                ..
            } if keys.iter().any(|k| k == key) => names.push(name.clone()),
            Condition::Count { .. } => {}
        }
    }

    /// Whether the signals delivered so far (by waitpoint key) satisfy the condition.
    pub fn is_satisfied(&self, signals: &BTreeMap<String, Vec<Signal>>) -> bool {
        match self {
            Condition::Single { key, matcher } => signals
                .get(key)
                .is_some_and(|list| list.iter().any(|s| matcher.accepts(s))),
            Condition::OperatorOnly | Condition::TimeoutOnly => false,
            Condition::AllOf(members) => {
                !members.is_empty() && members.iter().all(|m| m.is_satisfied(signals))
            }
            Condition::Count {
                n,
                kind,
                matcher,
                keys,
            } => {
                let matching = keys.iter().flat_map(|key| {
                    signals
                        .get(key)
                        .into_iter()
                        .flatten()
                        .filter(|s| matcher.as_ref().is_none_or(|m| m.accepts(s)))
                        .map(move |s| (key, s))
                });
                let count = match kind {
                    CountKind::DistinctWaitpoints => {
                        matching.map(|(key, _)| key).collect::<BTreeSet<_>>().len()
                    }
                    CountKind::DistinctSignals => {
                        matching.map(|(_, s)| &s.id).collect::<BTreeSet<_>>().len()
                    }
                    CountKind::DistinctSources => matching
                        .map(|(_, s)| (&s.source_type, &s.source_identity))
                        .collect::<BTreeSet<_>>()
                        .len(),
                };
                count >= *n as usize
            }
        }
    }
}

fn string_field(json: &Json, field: &str) -> Result<String, String> {
    json.get(field)
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("missing string field {field:?}"))
}

fn matcher(json: &Json) -> Result<Matcher, String> {
    match json {
        Json::String(unit) if unit == "Wildcard" => Ok(Matcher::Wildcard),
        Json::Object(map) => match map.get("ByName").and_then(Json::as_str) {
            Some(name) => Ok(Matcher::ByName(name.to_owned())),
            None => Err(format!("unknown matcher {json}")),
        },
        other => Err(format!("unknown matcher {other}")),
    }
}

fn composite(body: &Json) -> Result<Condition, String> {
    match body.get("kind").and_then(Json::as_str) {
        Some("AllOf") => {
            let members = body
                .get("members")
                .and_then(Json::as_array)
                .ok_or("AllOf lacks members")?;
            members
                .iter()
                .map(Condition::from_json)
                .collect::<Result<Vec<_>, _>>()
                .map(Condition::AllOf)
        }
        Some("Count") => {
            let n = body
                .get("n")
                .and_then(Json::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("Count lacks n")?;
            let kind = match body.get("count_kind").and_then(Json::as_str) {
                Some("DistinctWaitpoints") => CountKind::DistinctWaitpoints,
                Some("DistinctSignals") => CountKind::DistinctSignals,
                Some("DistinctSources") => CountKind::DistinctSources,
                other => return Err(format!("unknown count_kind {other:?}")),
            };
            let matcher = match body.get("matcher") {
                None | Some(Json::Null) => None,
                Some(json) => Some(matcher(json)?),
            };
            let keys = body
                .get("waitpoints")
                .and_then(Json::as_array)
                .ok_or("Count lacks waitpoints")?
                .iter()
                .map(|key| key.as_str().map(str::to_owned).ok_or("waitpoint key"))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Condition::Count {
                n,
                kind,
                matcher,
                keys,
            })
        }
        other => Err(format!("unknown composite kind {other:?}")),
    }
}

/// Parse a stored condition; a parse failure is `Validation(Corruption)` (`condition: <e>`).
pub fn parse_stored(text: &str) -> Result<Condition, EngineError> {
    Condition::parse(text).map_err(|error| corruption(format!("condition: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(id: &str, name: &str, source: &str) -> Signal {
        Signal {
            id: id.into(),
            name: name.into(),
            source_type: "worker".into(),
            source_identity: source.into(),
        }
    }

    fn by_key(entries: &[(&str, Signal)]) -> BTreeMap<String, Vec<Signal>> {
        let mut map: BTreeMap<String, Vec<Signal>> = BTreeMap::new();
        for (key, s) in entries {
            map.entry((*key).into()).or_default().push(s.clone());
        }
        map
    }

    #[test]
    fn parses_every_upstream_form() {
        assert_eq!(
            Condition::parse(r#"{"Single":{"waitpoint_key":"wpk:a","matcher":"Wildcard"}}"#),
            Ok(Condition::Single {
                key: "wpk:a".into(),
                matcher: Matcher::Wildcard
            })
        );
        assert_eq!(
            Condition::parse(r#"{"Single":{"waitpoint_key":"k","matcher":{"ByName":"ready"}}}"#),
            Ok(Condition::Single {
                key: "k".into(),
                matcher: Matcher::ByName("ready".into())
            })
        );
        assert_eq!(
            Condition::parse(r#""OperatorOnly""#),
            Ok(Condition::OperatorOnly)
        );
        let count = Condition::parse(
            r#"{"Composite":{"kind":"Count","n":2,"count_kind":"DistinctSignals","waitpoints":["k1","k2"]}}"#,
        )
        .unwrap();
        assert_eq!(
            count,
            Condition::Count {
                n: 2,
                kind: CountKind::DistinctSignals,
                matcher: None,
                keys: vec!["k1".into(), "k2".into()]
            }
        );
        let all = Condition::parse(
            r#"{"Composite":{"kind":"AllOf","members":["TimeoutOnly",{"Single":{"waitpoint_key":"a","matcher":"Wildcard"}}]}}"#,
        )
        .unwrap();
        assert_eq!(all.referenced_keys(), vec!["a".to_string()]);
        assert!(Condition::parse(r#"{"Nope":{}}"#).is_err());
        assert!(Condition::parse("not json").is_err());
    }

    #[test]
    fn evaluates_single_allof_and_count() {
        let single = Condition::Single {
            key: "a".into(),
            matcher: Matcher::ByName("ready".into()),
        };
        assert!(!single.is_satisfied(&by_key(&[("a", signal("1", "other", "x"))])));
        assert!(single.is_satisfied(&by_key(&[("a", signal("1", "ready", "x"))])));
        assert!(!single.is_satisfied(&by_key(&[("b", signal("1", "ready", "x"))])));

        let all = Condition::AllOf(vec![
            Condition::Single {
                key: "a".into(),
                matcher: Matcher::Wildcard,
            },
            Condition::Single {
                key: "b".into(),
                matcher: Matcher::Wildcard,
            },
        ]);
        assert!(!all.is_satisfied(&by_key(&[("a", signal("1", "x", "s"))])));
        assert!(all.is_satisfied(&by_key(&[
            ("a", signal("1", "x", "s")),
            ("b", signal("2", "x", "s"))
        ])));
        assert!(!Condition::AllOf(vec![]).is_satisfied(&BTreeMap::new()));
        assert!(!Condition::OperatorOnly.is_satisfied(&by_key(&[("a", signal("1", "x", "s"))])));

        let sources = Condition::Count {
            n: 2,
            kind: CountKind::DistinctSources,
            matcher: None,
            keys: vec!["a".into()],
        };
        assert!(!sources.is_satisfied(&by_key(&[
            ("a", signal("1", "x", "same")),
            ("a", signal("2", "x", "same"))
        ])));
        assert!(sources.is_satisfied(&by_key(&[
            ("a", signal("1", "x", "one")),
            ("a", signal("2", "x", "two"))
        ])));
        let waitpoints = Condition::Count {
            n: 2,
            kind: CountKind::DistinctWaitpoints,
            matcher: Some(Matcher::ByName("ok".into())),
            keys: vec!["a".into(), "b".into()],
        };
        assert!(!waitpoints.is_satisfied(&by_key(&[
            ("a", signal("1", "ok", "s")),
            ("b", signal("2", "no", "s"))
        ])));
        assert!(waitpoints.is_satisfied(&by_key(&[
            ("a", signal("1", "ok", "s")),
            ("b", signal("2", "ok", "s"))
        ])));
        let signals = Condition::Count {
            n: 2,
            kind: CountKind::DistinctSignals,
            matcher: None,
            keys: vec!["a".into()],
        };
        assert!(!signals.is_satisfied(&by_key(&[
            ("a", signal("1", "x", "s")),
            ("a", signal("1", "x", "s"))
        ])));
    }

    #[test]
    fn validation_uses_valkeys_details() {
        let detail = |condition: Condition, timeout: bool| match condition.validate(timeout) {
            Err(EngineError::Validation(v)) => v.detail,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            detail(Condition::TimeoutOnly, false),
            "timeout_only_without_deadline"
        );
        assert!(Condition::TimeoutOnly.validate(true).is_ok());
        assert_eq!(
            detail(
                Condition::Single {
                    key: "a".into(),
                    matcher: Matcher::ByName(String::new())
                },
                false
            ),
            "resume_condition: empty signal name (use Wildcard instead)"
        );
        assert_eq!(
            detail(
                Condition::Count {
                    n: 0,
                    kind: CountKind::DistinctSignals,
                    matcher: None,
                    keys: vec!["a".into()]
                },
                false
            ),
            "count_n_zero at path <root>"
        );
        assert_eq!(
            detail(Condition::AllOf(vec![Condition::AllOf(vec![])]), false),
            "allof_empty_members at path members[0]"
        );
        assert_eq!(
            detail(
                Condition::Count {
                    n: 3,
                    kind: CountKind::DistinctWaitpoints,
                    matcher: None,
                    keys: vec!["a".into(), "b".into()]
                },
                false
            ),
            "count_exceeds_waitpoint_set: n=3 > waitpoints.len()=2 at path <root>"
        );
        let mut deep = Condition::OperatorOnly;
        for _ in 0..6 {
            deep = Condition::AllOf(vec![deep]);
        }
        assert!(detail(deep, false).starts_with("depth 5 exceeds cap 4"));
    }

    #[test]
    fn required_names_follow_the_reference() {
        let condition = Condition::AllOf(vec![
            Condition::Single {
                key: "a".into(),
                matcher: Matcher::ByName("ready".into()),
            },
            Condition::Count {
                n: 1,
                kind: CountKind::DistinctSignals,
                matcher: Some(Matcher::ByName("ready".into())),
                keys: vec!["a".into(), "b".into()],
            },
            Condition::Single {
                key: "b".into(),
                matcher: Matcher::Wildcard,
            },
        ]);
        assert_eq!(condition.required_signal_names("a"), vec!["ready"]);
        assert_eq!(condition.required_signal_names("b"), vec!["ready"]);
        assert!(condition.required_signal_names("c").is_empty());
        assert_eq!(
            Condition::OperatorOnly.required_signal_names("x"),
            vec!["__operator_only__"]
        );
    }
}
