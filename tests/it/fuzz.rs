//! No input ends in INTERNAL: every filter operator of every table with hostile values
//! (escapes in `like`, NUL characters, extreme numbers, impossible dates, deep JSON), and
//! malformed ids, cursors and page sizes, answer with data or a `BAD_USER_INPUT` /
//! `NOT_FOUND` error, on both backends.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::on_both_backends;

/// Hostile literals for one scalar filter type (GraphQL syntax).
fn values(filter_type: &str) -> Vec<String> {
    let strings = [
        r#""%""#,
        r#""_\\%""#,
        r#""\\""#,
        r#""a\u0000b""#,
        r#""'; DROP TABLE shops; --""#,
        r#""😀 ü""#,
    ];
    let list: Vec<String> = match filter_type {
        "StringFilter" => strings.iter().map(|s| (*s).to_owned()).collect(),
        "IntFilter" => vec!["2147483647".into(), "-2147483648".into(), "0".into()],
        "BigIntFilter" => vec![
            r#""9223372036854775807""#.into(),
            r#""-9223372036854775808""#.into(),
            r#""99999999999999999999""#.into(),
            "1".into(),
        ],
        "FloatFilter" => vec!["1e308".into(), "-1e308".into(), "0.1".into()],
        "DecimalFilter" => vec![
            r#""NaN""#.into(),
            r#""1e400""#.into(),
            r#""-0""#.into(),
            r#""99999999999999999999999999999.99""#.into(),
            r#""abc""#.into(),
        ],
        "BooleanFilter" => vec!["true".into()],
        "DateFilter" => vec![
            r#""2024-02-30""#.into(),
            r#""10000-01-01""#.into(),
            r#""0000-01-01""#.into(),
            r#""not a date""#.into(),
        ],
        "DateTimeFilter" => vec![
            r#""2024-13-01T00:00:00Z""#.into(),
            r#""1970-01-01T00:00:00Z""#.into(),
            r#""9999-12-31T23:59:59Z""#.into(),
            r#""+275760-09-13T00:00:00Z""#.into(),
            r#""garbage""#.into(),
        ],
        "UUIDFilter" => vec![
            r#""not-a-uuid""#.into(),
            r#""00000000-0000-0000-0000-000000000000""#.into(),
            r#""""#.into(),
        ],
        "JSONFilter" => vec![
            r#"{a: {b: {c: 1}}}"#.into(),
            r#"{a: [1, 2]}"#.into(),
            r#"{a: "\u0000"}"#.into(),
            r#"{a: 1e308}"#.into(),
            r#"{a: null}"#.into(),
            "[]".into(),
            "1".into(),
        ],
        _ => Vec::new(),
    };
    list
}

/// The operators of a scalar filter type, as (name, takes a list).
fn operators(filter_type: &str) -> Vec<(&'static str, bool)> {
    match filter_type {
        "JSONFilter" => vec![("contains", false), ("isNull", false)],
        "BooleanFilter" => vec![("eq", false), ("ne", false)],
        "StringFilter" => vec![
            ("eq", false),
            ("ne", false),
            ("in", true),
            ("notIn", true),
            ("lt", false),
            ("gte", false),
            ("like", false),
            ("ilike", false),
        ],
        _ => vec![
            ("eq", false),
            ("ne", false),
            ("in", true),
            ("notIn", true),
            ("lt", false),
            ("lte", false),
            ("gt", false),
            ("gte", false),
        ],
    }
}

/// Every root connection with its filter type's columns: root field -> [(column, type)].
async fn connections(app: &TestApp) -> BTreeMap<String, Vec<(String, String)>> {
    let query = "{ __schema { queryType { fields { name args { name type { name } } } } } }";
    let reply = app.query(query, json!({})).await;
    let mut roots = BTreeMap::new();
    for field in reply.data()["__schema"]["queryType"]["fields"]
        .as_array()
        .unwrap()
    {
        let Some(filter) = field["args"]
            .as_array()
            .unwrap()
            .iter()
            .find(|arg| arg["name"] == "filter")
            .and_then(|arg| arg["type"]["name"].as_str())
        else {
            continue;
        };
        let shape = app
            .query(
                "query($t: String!) { __type(name: $t) { inputFields { name type { name } } } }",
                json!({ "t": filter }),
            )
            .await;
        let columns = shape.data()["__type"]["inputFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| {
                let ty = f["type"]["name"].as_str()?;
                (!values(ty).is_empty())
                    .then(|| (f["name"].as_str().unwrap().to_owned(), ty.to_owned()))
            })
            .collect();
        roots.insert(field["name"].as_str().unwrap().to_owned(), columns);
    }
    roots
}

/// Runs `cases` (root field, arguments) in documents of `per` aliased fields; returns the
/// cases that ended in anything but data, `BAD_USER_INPUT` or `NOT_FOUND`.
async fn failures(app: &TestApp, cases: &[(String, String)], per: usize) -> Vec<String> {
    let mut failed = Vec::new();
    for chunk in cases.chunks(per) {
        let fields: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, (root, args))| {
                format!(
                    "c{i}: {root}({args}) {{ totalCount nodes {{ id }} pageInfo {{ endCursor }} }}"
                )
            })
            .collect();
        let document = format!("{{ {} }}", fields.join(" "));
        let reply = app.query(&document, json!({})).await;
        for error in reply.body["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str().unwrap_or("(none)");
            if code == "BAD_USER_INPUT" || code == "NOT_FOUND" {
                continue;
            }
            let case = error["path"][0]
                .as_str()
                .and_then(|alias| alias.strip_prefix('c'))
                .and_then(|i| i.parse::<usize>().ok())
                .map(|i| format!("{}({})", chunk[i].0, chunk[i].1))
                .unwrap_or_else(|| document.chars().take(300).collect());
            failed.push(format!("{code}: {case}: {}", error["message"]));
        }
    }
    failed
}

on_both_backends! {
    async fn no_filter_value_on_any_table_ends_in_internal(t) {
        let app = TestApp::new(t).await;
        let mut cases = Vec::new();
        for (t, (root, columns)) in connections(&app).await.into_iter().enumerate() {
            // One column of each type per table meets every operator, with two of the
            // type's values, rotating over tables so every value meets every operator.
            let mut seen = std::collections::HashSet::new();
            for (column, ty) in columns {
                if !seen.insert(ty.clone()) {
                    continue;
                }
                let hostile = values(&ty);
                for (o, (op, list)) in operators(&ty).into_iter().enumerate() {
                    for k in 0..2 {
                        let value = &hostile[(t + o + k) % hostile.len()];
                        let value = if op == "isNull" { "true".to_owned() } else if list { format!("[{value}]") } else { value.clone() };
                        cases.push((root.clone(), format!("first: 1, filter: {{{column}: {{{op}: {value}}}}}")));
                    }
                }
                if ty == "StringFilter" {
                    cases.push((root.clone(), format!("filter: {{{column}: {{in: []}}}}")));
                    cases.push((root.clone(), format!("filter: {{not: {{or: [{{{column}: {{like: \"\\\\\"}}}}, {{and: []}}]}}}}")));
                }
            }
        }
        assert!(cases.len() > 500, "{} cases", cases.len());

        // Each case alone: on PostgreSQL one failed statement would abort the rest of a
        // request's transaction and hide the next case.
        let failed = failures(&app, &cases, 1).await;

        assert!(failed.is_empty(), "{} of {} cases failed:\n{}", failed.len(), cases.len(), failed.join("\n"));
    }

    async fn no_malformed_id_cursor_or_page_size_ends_in_internal(t) {
        let app = TestApp::new(t).await;
        crate::common::fixtures::shop(&app.t.db, "a.myshopify.com").await;
        use base64::Engine as _;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let cursors = [
            String::new(),
            "garbage".to_owned(),
            "%%%".to_owned(),
            b64("{}"),
            b64("[]"),
            b64("null"),
            b64("[1, 2, 3]"),
            b64(&"[".repeat(200)),
            b64("\u{0}"),
            "A".repeat(10_000),
        ];
        let mut cases = Vec::new();
        for cursor in &cursors {
            for (page, direction) in [("first: 2", "after"), ("last: 2", "before")] {
                cases.push(("shops".to_owned(), format!("{page}, {direction}: {}", Value::from(cursor.as_str()))));
            }
            cases.push(("shops".to_owned(), format!("first: 2, orderBy: [{{field: DOMAIN, direction: DESC}}], after: {}", Value::from(cursor.as_str()))));
        }
        for page in ["first: 0", "last: 0", "first: -1", "last: -5", "first: 251", "first: 2, last: 2", "first: 2147483647"] {
            cases.push(("shops".to_owned(), page.to_owned()));
        }
        let failed = failures(&app, &cases, 1).await;

        let ids = [
            "",
            "gid://stratix/Shop/not-a-uuid",
            "gid://stratix/Nope/00000000-0000-0000-0000-000000000000",
            "gid://stratix/Shop/",
            "gid://stratix//",
            "gid://stratix/Shop/00000000-0000-0000-0000-000000000000/extra",
            "00000000-0000-0000-0000-000000000000",
            "\u{0}",
        ];
        let mut node_failures = Vec::new();
        for id in ids {
            for query in [
                "query($id: ID!) { node(id: $id) { id } }",
                "query($id: ID!) { nodes(ids: [$id, $id]) { id } }",
                "query($id: ID!) { shops(filter: {id: {eq: $id}}) { totalCount } }",
                "mutation($id: ID!) { productDelete(id: $id) { deletedId userErrors { code } } }",
            ] {
                let reply = app.query(query, json!({ "id": id })).await;
                let code = reply.code();
                if !(code.is_empty() || code == "BAD_USER_INPUT" || code == "NOT_FOUND") {
                    node_failures.push(format!("{code}: {query} with {id:?}: {}", reply.body));
                }
            }
        }

        let shop = crate::common::fixtures::shop(&app.t.db, "b.myshopify.com").await;
        let mut input_failures = Vec::new();
        for (query, variables) in [
            ("mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }", json!({ "i": { "email": "a\u{0}@example.com", "password": "long enough password" } })),
            ("mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }", json!({ "i": { "email": "b@example.com", "password": "long enough password", "name": "a\u{0}" } })),
            ("mutation($i: SignInInput!) { signIn(input: $i) { userErrors { code } } }", json!({ "i": { "email": "a\u{0}@example.com", "password": "long enough password" } })),
            ("mutation($i: ProductCreateInput!) { productCreate(input: $i) { userErrors { code } } }", json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "h", "title": "a\u{0}" } })),
            ("mutation($i: ProductCreateInput!) { productCreate(input: $i) { userErrors { code } } }", json!({ "i": { "shopId": shop, "shopifyId": "2", "handle": "h2", "data": { "k\u{0}": 1 } } })),
        ] {
            let reply = app.query(query, variables.clone()).await;
            let code = reply.code();
            if !(code.is_empty() || code == "BAD_USER_INPUT" || code == "NOT_FOUND") {
                input_failures.push(format!("{code}: {query} with {variables}: {}", reply.body));
            }
        }

        assert!(failed.is_empty(), "{}", failed.join("\n"));
        assert!(node_failures.is_empty(), "{}", node_failures.join("\n"));
        assert!(input_failures.is_empty(), "{}", input_failures.join("\n"));
    }
}
