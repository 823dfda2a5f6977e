//! A pass over the YAML tree that reports *every* unknown key of a file, each at
//! its own line and column. serde's `deny_unknown_fields` stops at the first one;
//! this pass runs before it, so a user fixes all typos in one round.
//!
//! Keys that a later version of Ferry supports get their own message instead of
//! "unknown key", so nobody thinks a feature was silently ignored.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::template::did_you_mean;

/// A YAML node with the positions of its keys and values.
#[derive(Debug)]
pub(super) enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

/// A map key as text (YAML allows non-string keys; they are never valid here).
#[derive(Debug)]
pub(super) struct Key(String);

/// A key problem: where, and what to say.
pub(super) struct KeyProblem {
    pub location: Location,
    pub message: String,
}

/// What keys a map may have.
#[derive(Clone, Copy)]
enum Shape {
    /// A map with these keys; `later` are keys of a later version.
    Keys {
        what: &'static str,
        known: &'static [(&'static str, Shape)],
        later: &'static [(&'static str, &'static str)],
    },
    /// A list whose items have this shape.
    List(&'static Shape),
    /// Anything: user data (`json:`, `headers:`), or a scalar.
    Free,
}

const RECIPE: Shape = Shape::Keys {
    what: "the recipe",
    known: &[
        ("id", Shape::Free),
        ("description", Shape::Free),
        ("enabled", Shape::Free),
        ("trigger", TRIGGER),
        ("when", Shape::Free),
        ("steps", Shape::List(&STEP)),
        ("concurrency", Shape::Free),
    ],
    later: &[],
};

const TRIGGER: Shape = Shape::Keys {
    what: "`trigger`",
    known: &[("webhook", WEBHOOK), ("schedule", SCHEDULE), ("poll", POLL)],
    later: &[],
};

const SCHEDULE: Shape = Shape::Keys {
    what: "`schedule`",
    known: &[
        ("cron", Shape::Free),
        ("timezone", Shape::Free),
        ("every", Shape::Free),
        ("missed", Shape::Free),
    ],
    later: &[],
};

const POLL: Shape = Shape::Keys {
    what: "`poll`",
    known: &[
        ("cron", Shape::Free),
        ("timezone", Shape::Free),
        ("every", Shape::Free),
        ("http", HTTP),
        ("timeout", Shape::Free),
        ("items", Shape::Free),
        ("key", Shape::Free),
        ("first", Shape::Free),
    ],
    later: &[],
};

const WEBHOOK: Shape = Shape::Keys {
    what: "`webhook`",
    known: &[
        ("path", Shape::Free),
        ("dedup", Shape::Free),
        ("respond", Shape::Free),
        ("timeout", Shape::Free),
        ("verify", VERIFY),
        ("rate", Shape::Free),
    ],
    later: &[],
};

const VERIFY: Shape = Shape::Keys {
    what: "`verify`",
    known: &[
        ("scheme", Shape::Free),
        ("secret", Shape::Free),
        ("header", Shape::Free),
        ("algorithm", Shape::Free),
        ("encoding", Shape::Free),
        ("prefix", Shape::Free),
        ("username", Shape::Free),
        ("password", Shape::Free),
        ("tolerance", Shape::Free),
    ],
    later: &[],
};

const STEP: Shape = Shape::Keys {
    what: "a step",
    known: &[
        ("id", Shape::Free),
        ("when", Shape::Free),
        ("http", HTTP),
        ("log", Shape::Free),
        ("timeout", Shape::Free),
        ("retry", RETRY),
    ],
    later: &[],
};

const RETRY: Shape = Shape::Keys {
    what: "`retry`",
    known: &[
        ("attempts", Shape::Free),
        ("backoff", Shape::Free),
        ("max", Shape::Free),
    ],
    later: &[],
};

const HTTP: Shape = Shape::Keys {
    what: "`http`",
    known: &[
        ("method", Shape::Free),
        ("url", Shape::Free),
        ("query", Shape::Free),
        ("headers", Shape::Free),
        ("json", Shape::Free),
        ("form", Shape::Free),
        ("body", Shape::Free),
        ("auth", AUTH),
        ("accept", Shape::Free),
    ],
    later: &[],
};

const AUTH: Shape = Shape::Keys {
    what: "`auth`",
    known: &[("bearer", Shape::Free), ("basic", BASIC_AUTH)],
    later: &[],
};

const BASIC_AUTH: Shape = Shape::Keys {
    what: "`basic`",
    known: &[("username", Shape::Free), ("password", Shape::Free)],
    later: &[],
};

/// Every unknown key of a recipe file.
pub(super) fn unknown_keys(root: &Spanned<Node>) -> Vec<KeyProblem> {
    let mut problems = Vec::new();
    walk(root, RECIPE, &mut problems);
    problems
}

fn walk(node: &Spanned<Node>, shape: Shape, problems: &mut Vec<KeyProblem>) {
    match (&node.value, shape) {
        (Node::Map(entries), Shape::Keys { what, known, later }) => {
            for (key, value) in entries {
                let name = key.value.0.as_str();
                if let Some((_, inner)) = known.iter().find(|(known_name, _)| *known_name == name) {
                    walk(value, *inner, problems);
                } else if let Some((_, feature)) = later.iter().find(|(later_name, _)| *later_name == name) {
                    problems.push(KeyProblem {
                        location: key.referenced,
                        message: format!("`{name}` in {what} is not supported by this version of Ferry: {feature} comes in a later version"),
                    });
                } else {
                    let names = known.iter().map(|(name, _)| *name);
                    let hint = did_you_mean(name, names.clone().chain(later.iter().map(|(name, _)| *name)))
                        .map(|close| format!("; did you mean `{close}`?"))
                        .unwrap_or_default();
                    let expected: Vec<&str> = names.collect();
                    problems.push(KeyProblem {
                        location: key.referenced,
                        message: format!(
                            "unknown key `{name}` in {what}; expected one of {}{hint}",
                            expected.join(", ")
                        ),
                    });
                }
            }
        }
        (Node::Seq(items), Shape::List(item_shape)) => {
            for item in items {
                walk(item, *item_shape, problems);
            }
        }
        // Wrong kinds of node (a list where a map belongs) are type errors that
        // serde reports with their place; this pass is only about keys.
        _ => {}
    }
}

/// The path of the value written at `location` (`steps[0].retry.attempts`), so a
/// type error can name the key it is about.
pub(super) fn path_at(root: &Spanned<Node>, line: u64, column: u64) -> Option<String> {
    fn walk(node: &Spanned<Node>, place: (u64, u64), path: &str) -> Option<String> {
        if (node.referenced.line(), node.referenced.column()) == place && !path.is_empty() {
            return Some(path.to_owned());
        }
        match &node.value {
            Node::Map(entries) => entries.iter().find_map(|(key, value)| {
                let inner = if path.is_empty() {
                    key.value.0.clone()
                } else {
                    format!("{path}.{}", key.value.0)
                };
                walk(value, place, &inner)
            }),
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, place, &format!("{path}[{index}]"))),
            Node::Scalar => None,
        }
    }
    walk(root, (line, column), "")
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Spanned<Key>, Spanned<Node>>()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Key, E> {
        Ok(Key(text.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Key, E> {
        Ok(Key(flag.to_string()))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Key, E> {
        Ok(Key(number.to_string()))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Key, E> {
        Ok(Key(number.to_string()))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Key, E> {
        Ok(Key(number.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key("null".to_owned()))
    }
}
