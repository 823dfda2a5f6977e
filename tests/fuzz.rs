//! Property tests as bounded fuzzing: the recipe loader, the webhook body parser
//! and template rendering never panic, whatever they get; they answer with
//! diagnostics or errors, and no render goes past its budget. The case counts keep CI's run to seconds (`PROPTEST_CASES` raises them
//! for a longer local run).

use std::path::Path;

use ferry::recipe::{Environment, load_source};
use ferry::template::PayloadReads;
use ferry::trigger::webhook::parse_body;
use proptest::prelude::*;

/// Any JSON document, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Fragments of real recipes, so that mutations reach past the YAML parser.
const FRAGMENTS: &[&str] = &[
    "trigger:\n",
    "  webhook:\n",
    "    path: x\n",
    "    dedup: '{{headers.x-id}}'\n",
    "    verify: {scheme: github, secret: s}\n",
    "    rate: 10/s\n",
    "  schedule: {cron: '*/5 * * * *', timezone: Europe/Berlin}\n",
    "  poll: {every: 1m, http: {url: 'https://x'}, items: '$.a[*]', key: '{{item.id}}'}\n",
    "when: '{{eq payload.a 1}}'\n",
    "steps:\n",
    "  - http: {url: 'https://example.com/{{payload.id}}', json: {a: '{{payload.a}}'}}\n",
    "  - log: '{{json steps.step1.body}}'\n",
    "    retry: {attempts: 3, backoff: 1s}\n",
    "concurrency: 2\n",
    "${MISSING}",
    "{{#each payload.items}}{{this}}{{/each}}",
    "- [",
    "{",
    ": :",
    "\t",
    "'",
    "\"",
];

fn recipe_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary text.
        ".{0,400}",
        // Shuffled and mutated fragments.
        proptest::collection::vec((0..FRAGMENTS.len(), ".{0,8}"), 1..20).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(index, noise)| format!("{}{noise}", FRAGMENTS[index]))
                .collect::<String>()
        }),
    ]
}

/// An expression: a path, a literal, or a helper call over expressions.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("payload.s".to_owned()),
        Just("payload.t".to_owned()),
        Just("payload.a".to_owned()),
        Just("payload.n".to_owned()),
        Just("@root.payload.s".to_owned()),
        Just("this".to_owned()),
        Just("../payload.a".to_owned()),
        Just("\"a\"".to_owned()),
        Just("\",\"".to_owned()),
        Just("3".to_owned()),
    ];
    const HELPERS: &[&str] = &[
        "replace",
        "join",
        "split",
        "upper",
        "lower",
        "json",
        "len",
        "default",
        "slice",
        "base64",
        "url_encode",
        "trim",
        "eq",
        "and",
        "contains",
        "sha256",
    ];
    leaf.prop_recursive(4, 16, 3, |inner| {
        (0..HELPERS.len(), proptest::collection::vec(inner, 1..4))
            .prop_map(|(helper, args)| format!("({} {})", HELPERS[helper], args.join(" ")))
    })
}

/// A template: text, expressions and blocks, nested.
fn template_source() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("x".to_owned()),
        expression()
            .prop_map(|expression| format!("{{{{{}}}}}", expression.trim_start_matches('(').trim_end_matches(')'))),
        expression().prop_map(|expression| format!("{{{{len {expression}}}}}")),
    ];
    let body = proptest::collection::vec(part, 0..4).prop_map(|parts| parts.concat());
    body.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|body| format!("{{{{#each payload.a}}}}{body}{{{{/each}}}}")),
            inner
                .clone()
                .prop_map(|body| format!("{{{{#each ../payload.a}}}}{body}{{{{/each}}}}")),
            (inner.clone(), inner.clone())
                .prop_map(|(yes, no)| format!("{{{{#if payload.n}}}}{yes}{{{{else}}}}{no}{{{{/if}}}}")),
            inner
                .clone()
                .prop_map(|body| format!("{{{{#with payload}}}}{body}{{{{/with}}}}")),
            proptest::collection::vec(inner, 1..3).prop_map(|parts| parts.concat()),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_render_panics_or_goes_past_its_budget(
        source in template_source(),
        s in 0usize..3000,
        t in 0usize..40,
        items in 0usize..300,
    ) {
        use ferry::template::{RenderBudget, Template, Templates, budget};
        let Ok(template) = Template::compile(&source) else {
            return Ok(());
        };
        let limits = RenderBudget {
            work: 20_000,
            bytes: 50_000,
            ..RenderBudget::default()
        };
        let templates = Templates::with_budget(limits);
        let context = serde_json::json!({"payload": {
            "s": "a".repeat(s), "t": "a".repeat(t), "n": items, "a": (0..items).collect::<Vec<_>>(),
        }});
        let (rendered, spent) = budget::within(limits, || {
            let rendered = templates.render_text(&template, &context);
            (rendered, budget::spent())
        });
        if let Ok(text) = rendered {
            let (work, bytes) = spent.expect("spent inside the render");
            prop_assert!(work <= limits.work, "{source}: {work} units");
            prop_assert!(bytes <= limits.bytes, "{source}: {bytes} bytes");
            prop_assert!(text.len() <= limits.bytes, "{source}: {} bytes of text", text.len());
        }
    }

    #[test]
    fn the_recipe_loader_never_panics(text in recipe_text()) {
        let environment = Environment::from_pairs([("PRESENT", "value")]);
        // Either a recipe or diagnostics, each with something to say.
        if let Err(problems) = load_source(Path::new("fuzz.yaml"), &text, &environment) {
            prop_assert!(!problems.is_empty());
            for problem in problems {
                prop_assert!(!problem.message.is_empty());
            }
        }
    }

    #[test]
    fn the_body_parser_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        content_type in prop_oneof![
            Just(None),
            Just(Some("application/json".to_owned())),
            Just(Some("application/x-www-form-urlencoded".to_owned())),
            Just(Some("text/plain; charset=utf-8".to_owned())),
            Just(Some("application/vnd.api+json; charset=latin1".to_owned())),
            ".{0,40}".prop_map(Some),
        ],
    ) {
        let mut some = PayloadReads::default();
        some.read(&["a", "b"]);
        for reads in [PayloadReads::all(), PayloadReads::default(), some] {
            let _ = parse_body(content_type.as_deref(), &body, &reads);
        }
    }

    #[test]
    fn a_json_body_is_kept_as_it_came_and_reads_back_as_its_payload(
        value in json_value(),
        pretty in any::<bool>(),
    ) {
        let body = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        }
        .expect("a Value serialises");
        let parsed = parse_body(Some("application/json"), body.as_bytes(), &PayloadReads::all()).expect("JSON parses");
        prop_assert_eq!(parsed.json_text.as_deref(), Some(body.as_str()));
        // What the store reads back is what the run saw.
        prop_assert_eq!(serde_json::from_str::<serde_json::Value>(&body).ok(), Some(parsed.payload));
    }

    #[test]
    fn form_bodies_always_parse(fields in proptest::collection::vec((".{0,12}", ".{0,12}"), 0..8)) {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish();
        let parsed = parse_body(Some("application/x-www-form-urlencoded"), body.as_bytes(), &PayloadReads::default());
        prop_assert!(parsed.is_ok());
    }
}
