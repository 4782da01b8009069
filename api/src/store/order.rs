//! Ordering and keyset pagination: a page starts after (or before) the sort key of a row,
//! so rows inserted before the cursor never shift the next page.

use sea_orm::Value;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, NullOrdering, Order, SelectStatement};

use super::values::is_null;
use crate::tables::Table;

/// One sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderTerm {
    /// The column (by index).
    pub column: usize,
    /// Descending instead of ascending.
    pub descending: bool,
    /// NULLs before the other values instead of after.
    pub nulls_first: bool,
}

/// A complete ordering: the requested terms, then `id`, so every row has a distinct key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ordering(Vec<OrderTerm>);

impl Ordering {
    /// `terms`, made total by appending `id` ascending unless already present.
    pub fn new(table: &Table, mut terms: Vec<OrderTerm>) -> Self {
        let id = table.id_column();
        if let Some(at) = terms.iter().position(|t| t.column == id) {
            terms.truncate(at + 1);
        } else {
            terms.push(OrderTerm {
                column: id,
                descending: false,
                nulls_first: false,
            });
        }
        Self(terms)
    }

    /// The terms, ending with `id`.
    pub fn terms(&self) -> &[OrderTerm] {
        &self.0
    }

    /// The same ordering run backwards (for `last` / `before`).
    pub fn reversed(&self) -> Self {
        Self(
            self.0
                .iter()
                .map(|t| OrderTerm {
                    column: t.column,
                    descending: !t.descending,
                    nulls_first: !t.nulls_first,
                })
                .collect(),
        )
    }

    /// Adds `ORDER BY` for this ordering to `select`.
    pub fn apply(&self, table: &Table, select: &mut SelectStatement) {
        for term in &self.0 {
            select.order_by_with_nulls(
                table.columns[term.column].name,
                direction(term),
                nulls(term),
            );
        }
    }

    /// The window `ORDER BY` clause text, for `ROW_NUMBER() OVER (...)`.
    pub fn window_sql(&self, table: &Table) -> String {
        self.0
            .iter()
            .map(|t| {
                format!(
                    "\"{}\" {} NULLS {}",
                    table.columns[t.column].name,
                    if t.descending { "DESC" } else { "ASC" },
                    if t.nulls_first { "FIRST" } else { "LAST" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows strictly after the row whose sort key is `key` (one value per term).
    pub fn after(&self, table: &Table, key: &[Value]) -> Condition {
        // Non-null columns all sorted one way compare as a row value, which an index on
        // those columns can seek to instead of filtering from its start.
        let descending = self.0[0].descending;
        let plain = self.0.iter().zip(key).all(|(t, v)| {
            t.descending == descending && !table.columns[t.column].nullable && !is_null(v)
        });
        if plain {
            let columns = Expr::tuple(
                self.0
                    .iter()
                    .map(|t| Expr::col(table.columns[t.column].name)),
            );
            let values = Expr::tuple(key.iter().cloned().map(Expr::val));
            let past = if descending {
                columns.lt(values)
            } else {
                columns.gt(values)
            };
            return Condition::all().add(past);
        }
        let mut any = Condition::any();
        for (k, term) in self.0.iter().enumerate() {
            let mut all = Condition::all();
            for (prior, value) in self.0[..k].iter().zip(key) {
                let col = Expr::col(table.columns[prior.column].name);
                all = all.add(if is_null(value) {
                    col.is_null()
                } else {
                    col.eq(value.clone())
                });
            }
            let col = || Expr::col(table.columns[term.column].name);
            let value = &key[k];
            let beyond = if is_null(value) {
                // Past a NULL come the non-NULLs if NULLs sort first, else nothing.
                if term.nulls_first {
                    Condition::all().add(col().is_not_null())
                } else {
                    Condition::all().add(Expr::cust("1 = 0"))
                }
            } else {
                let past = if term.descending {
                    col().lt(value.clone())
                } else {
                    col().gt(value.clone())
                };
                if term.nulls_first {
                    Condition::all().add(past)
                } else {
                    Condition::any().add(past).add(col().is_null())
                }
            };
            any = any.add(all.add(beyond));
        }
        any
    }

    /// The sort key of `row` (full-width row of column values).
    pub fn key_of(&self, row: &[Option<Value>]) -> Vec<Value> {
        self.0
            .iter()
            .map(|t| row[t.column].clone().unwrap_or(Value::Int(None)))
            .collect()
    }
}

fn direction(term: &OrderTerm) -> Order {
    if term.descending {
        Order::Desc
    } else {
        Order::Asc
    }
}

fn nulls(term: &OrderTerm) -> NullOrdering {
    if term.nulls_first {
        NullOrdering::First
    } else {
        NullOrdering::Last
    }
}
