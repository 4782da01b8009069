//! Row filters: a small boolean language over columns, turned into SQL the same way on
//! both backends.

use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func};
use sea_orm::{DbBackend, Value};

use crate::tables::Table;

/// A predicate over one table's rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Every filter holds.
    All(Vec<Filter>),
    /// At least one filter holds.
    Any(Vec<Filter>),
    /// The filter does not hold.
    Not(Box<Filter>),
    /// A test of one column (by index).
    Column(usize, Op),
}

/// A test of one column's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Equal.
    Eq(Value),
    /// Not equal (NULLs never match, as in SQL).
    Ne(Value),
    /// Equal to one of.
    In(Vec<Value>),
    /// Equal to none of.
    NotIn(Vec<Value>),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Greater than.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Is (true) or is not (false) NULL.
    IsNull(bool),
    /// SQL `LIKE`, case-sensitive on both backends (`%` any run, `_` any one character).
    Like(String),
    /// Case-insensitive `LIKE`.
    ILike(String),
    /// A JSON object holds each of these top-level keys with these scalar values.
    Contains(Vec<(String, serde_json::Value)>),
}

impl Filter {
    /// The SQL condition for this filter on `table`.
    pub fn condition(&self, table: &Table, backend: DbBackend) -> Condition {
        match self {
            Self::All(filters) => filters
                .iter()
                .fold(Condition::all(), |c, f| c.add(f.condition(table, backend))),
            Self::Any(filters) => filters
                .iter()
                .fold(Condition::any(), |c, f| c.add(f.condition(table, backend))),
            Self::Not(filter) => filter.condition(table, backend).not(),
            Self::Column(index, op) => {
                Condition::all().add(op.expr(table.columns[*index].name, backend))
            }
        }
    }
}

impl Op {
    fn expr(&self, column: &'static str, backend: DbBackend) -> Expr {
        let col = || Expr::col(column);
        let postgres = backend == DbBackend::Postgres;
        match self {
            Self::Eq(v) => col().eq(v.clone()),
            Self::Ne(v) => col().ne(v.clone()),
            Self::In(vs) if vs.is_empty() => Expr::cust("1 = 0"),
            Self::In(vs) => col().is_in(vs.iter().cloned()),
            Self::NotIn(vs) if vs.is_empty() => Expr::cust("1 = 1"),
            Self::NotIn(vs) => col().is_not_in(vs.iter().cloned()),
            Self::Lt(v) => col().lt(v.clone()),
            Self::Lte(v) => col().lte(v.clone()),
            Self::Gt(v) => col().gt(v.clone()),
            Self::Gte(v) => col().gte(v.clone()),
            Self::IsNull(true) => col().is_null(),
            Self::IsNull(false) => col().is_not_null(),
            Self::Like(pattern) if postgres => col().like(pattern.as_str()),
            // SQLite's LIKE ignores ASCII case; GLOB is its case-sensitive twin.
            Self::Like(pattern) => col().binary(
                sea_orm::sea_query::BinOper::Custom("GLOB"),
                like_to_glob(pattern),
            ),
            Self::ILike(pattern) if postgres => col().binary(
                sea_orm::sea_query::BinOper::Custom("ILIKE"),
                pattern.as_str(),
            ),
            Self::ILike(pattern) => Expr::expr(Func::lower(col())).like(pattern.to_lowercase()),
            Self::Contains(pairs) if postgres => {
                let object: serde_json::Map<String, serde_json::Value> =
                    pairs.iter().cloned().collect();
                col().binary(
                    sea_orm::sea_query::BinOper::Custom("@>"),
                    Expr::val(Value::from(serde_json::Value::Object(object))).cast_as("jsonb"),
                )
            }
            Self::Contains(pairs) => pairs.iter().fold(Expr::cust("1 = 1"), |all, (key, value)| {
                let path = format!("$.\"{}\"", key.replace('"', "\\\""));
                let extracted =
                    Expr::cust_with_exprs("json_extract(?, ?)", [col(), Expr::val(path)]);
                let test = match value {
                    serde_json::Value::Bool(b) => extracted.eq(i32::from(*b)),
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => extracted.eq(i),
                        None => extracted.eq(n.as_f64().unwrap_or_default()),
                    },
                    serde_json::Value::String(s) => extracted.eq(s.as_str()),
                    _ => Expr::cust("1 = 0"),
                };
                all.and(test)
            }),
        }
    }
}

/// Translates a LIKE pattern (`%`, `_`, backslash escapes) into a GLOB pattern.
fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '\\' => match chars.next() {
                Some(escaped) => push_literal(&mut glob, escaped),
                None => push_literal(&mut glob, '\\'),
            },
            other => push_literal(&mut glob, other),
        }
    }
    glob
}

fn push_literal(glob: &mut String, ch: char) {
    match ch {
        '*' | '?' | '[' => {
            glob.push('[');
            glob.push(ch);
            glob.push(']');
        }
        other => glob.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::like_to_glob;

    #[test]
    fn like_patterns_become_equivalent_globs() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob(r"100\%*"), "100%[*]");
        assert_eq!(like_to_glob("[x]?"), "[[]x][?]");
    }
}
