//! A recipe file as a YAML tree with the place of every key and value, read
//! before the file is read into its types: the schema is checked against it
//! (every problem at once, each at its own line and column, where serde would
//! stop at the first), and a type error serde finds is named by its path here.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A YAML node with the positions of its keys and values.
#[derive(Debug)]
pub(super) enum Node {
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(Scalar),
}

/// A scalar as YAML typed it: the schema asks for numbers and flags where a
/// text will not do.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool,
    Integer(i128),
    Float,
    Text(String),
}

/// A map key as text (YAML allows non-string keys; they are never valid here).
#[derive(Debug)]
pub(super) struct Key(pub String);

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
            Node::Scalar(_) => None,
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
        Ok(Node::Scalar(Scalar::Bool))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Integer(number.into())))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Integer(number.into())))
    }
    fn visit_i128<E: de::Error>(self, number: i128) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Integer(number)))
    }
    fn visit_u128<E: de::Error>(self, number: u128) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Integer(
            i128::try_from(number).unwrap_or(i128::MAX),
        )))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Float))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Text(text.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Null))
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
