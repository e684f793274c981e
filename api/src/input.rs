//! What every number and text from outside must satisfy before a use case sees it. The bounds
//! are far above any real shop's values and far below what the arithmetic can hold: the largest
//! points price times the largest quantity times any multiplier stays exact in `i64`, and the
//! largest amount of money stays exact in fen. Out of bounds is VALIDATION naming the field.

use std::ops::RangeInclusive;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, ServerError, ServerResult, Value, Variables};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{AppError, AppResult};

/// Any amount of points an operator sets: prices, rewards, gifts, targets, thresholds.
pub const POINTS: RangeInclusive<i64> = 0..=10_000_000;
/// A cumulative target or threshold: points raised, events counted, growth reached.
pub const TOTAL: RangeInclusive<i64> = 1..=1_000_000_000;
/// Units of stock, of an item or a prize.
pub const STOCK: RangeInclusive<i64> = 0..=10_000_000;
/// A prize's relative weight.
pub const WEIGHT: RangeInclusive<i64> = 1..=1_000_000;
/// A per-member, per-day or per-month count an operator sets.
pub const COUNT: RangeInclusive<i64> = 1..=100_000;
/// The most money, in yuan, that one amount may be: a price, a coupon, a purchase.
pub const MAX_YUAN: i64 = 1_000_000;

/// `value` if it lies in `range`; otherwise VALIDATION on `field`.
pub fn bounded(field: &str, value: i64, range: RangeInclusive<i64>) -> AppResult<i64> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(AppError::validation(
            field,
            format!(
                "{field} must be between {} and {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// An amount of money in yuan, as fen: 0 to `MAX_YUAN`, at most two decimal places.
pub fn yuan_to_fen(field: &str, yuan: Decimal) -> AppResult<i64> {
    let refuse = || {
        AppError::validation(
            field,
            format!("{field} is yuan: 0 to {MAX_YUAN}, at most two decimal places"),
        )
    };
    if yuan < Decimal::ZERO || yuan > Decimal::from(MAX_YUAN) {
        return Err(refuse());
    }
    let fen = yuan.checked_mul(Decimal::ONE_HUNDRED).ok_or_else(refuse)?;
    if !fen.fract().is_zero() {
        return Err(refuse());
    }
    fen.to_i64().ok_or_else(refuse)
}

/// Codes and kinds (a task's code, an event kind, an achievement's code) are short snake_case
/// words: lowercase letters, digits, `_` and `.`, 1 to 64 of them.
pub fn is_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// The first character of `text` that no input may hold: control characters (NUL among them,
/// which PostgreSQL refuses), except the newline, carriage return and tab of ordinary text.
pub fn forbidden_char(text: &str) -> Option<char> {
    text.chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Refuses, before anything runs, any request whose string inputs (inline or in variables, at
/// any depth) hold a character `forbidden_char` refuses: one check for every field of both
/// schemas, answered VALIDATION with the innermost field's name.
pub struct PlainTextInputs;

impl ExtensionFactory for PlainTextInputs {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PlainTextInputs)
    }
}

#[async_trait::async_trait]
impl Extension for PlainTextInputs {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        match first_bad_input(&document, variables) {
            None => Ok(document),
            Some((field, c)) => {
                let mut extensions = ErrorExtensionValues::default();
                extensions.set("code", "VALIDATION");
                extensions.set("field", field.as_str());
                let mut error = ServerError::new(
                    format!("{field} holds a control character (U+{:04X})", c as u32),
                    None,
                );
                error.extensions = Some(extensions);
                Err(error)
            }
        }
    }
}

/// The first string input holding a forbidden character: the field it belongs to, and the
/// character. Arguments are checked with their variables filled in, then any variable left.
fn first_bad_input(document: &ExecutableDocument, variables: &Variables) -> Option<(String, char)> {
    let sets = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|f| &f.node.selection_set.node),
        );
    for set in sets {
        if let Some(bad) = bad_in_selection(set, variables) {
            return Some(bad);
        }
    }
    variables
        .iter()
        .find_map(|(name, value)| bad_in_value(name.as_str(), value))
}

fn bad_in_selection(set: &SelectionSet, variables: &Variables) -> Option<(String, char)> {
    for selection in &set.items {
        let found = match &selection.node {
            Selection::Field(field) => field
                .node
                .arguments
                .iter()
                .find_map(|(name, value)| {
                    let value = value
                        .node
                        .clone()
                        .into_const_with(|var| variables.get(&var).cloned().ok_or(()))
                        .ok()?;
                    bad_in_value(name.node.as_str(), &value)
                })
                .or_else(|| bad_in_selection(&field.node.selection_set.node, variables)),
            Selection::InlineFragment(fragment) => {
                bad_in_selection(&fragment.node.selection_set.node, variables)
            }
            Selection::FragmentSpread(_) => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn bad_in_value(field: &str, value: &Value) -> Option<(String, char)> {
    match value {
        Value::String(text) => forbidden_char(text).map(|c| (field.to_string(), c)),
        Value::List(items) => items.iter().find_map(|item| bad_in_value(field, item)),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(name, value)| bad_in_value(name.as_str(), value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_outside_their_range_name_the_field() {
        assert_eq!(bounded("stock", 5, STOCK).unwrap(), 5);
        let err = bounded("pointsPrice", (1 << 62) + 1, POINTS).unwrap_err();
        assert!(matches!(err, AppError::Validation { ref field, .. } if field == "pointsPrice"));
        assert!(bounded("weight", 0, WEIGHT).is_err());
        assert!(bounded("pointsPrice", -1, POINTS).is_err());
    }

    #[test]
    fn money_is_two_places_up_to_a_million_yuan() {
        assert_eq!(yuan_to_fen("amount", d("12.34")).unwrap(), 1234);
        assert_eq!(yuan_to_fen("amount", d("1000000")).unwrap(), 100_000_000);
        assert_eq!(yuan_to_fen("amount", d("0")).unwrap(), 0);
        for bad in ["1000000.01", "0.001", "-1", "79228162514264337593543950335"] {
            assert!(yuan_to_fen("amount", d(bad)).is_err(), "{bad}");
        }
        assert!(yuan_to_fen("amount", Decimal::MAX).is_err());
        assert!(yuan_to_fen("amount", Decimal::MIN).is_err());
    }

    #[test]
    fn codes_are_short_snake_case_words() {
        assert!(is_code("browse_item") && is_code("checkin.streak") && is_code("day7"));
        assert!(!is_code("") && !is_code("Browse") && !is_code("a b") && !is_code(&"a".repeat(65)));
    }

    #[test]
    fn control_characters_are_refused_but_not_line_breaks_or_tabs() {
        assert_eq!(forbidden_char("bad\0name"), Some('\0'));
        assert_eq!(forbidden_char("bell\u{7}"), Some('\u{7}'));
        assert_eq!(forbidden_char("c1\u{85}"), Some('\u{85}'));
        assert_eq!(forbidden_char("第一行\n第二行\r\n\t缩进"), None);
        assert_eq!(forbidden_char("爱丽丝 🎁"), None);
    }

    fn bad(query: &str, variables: serde_json::Value) -> Option<(String, char)> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        first_bad_input(&document, &Variables::from_json(variables))
    }

    #[test]
    fn a_control_character_anywhere_in_the_inputs_names_its_field() {
        assert_eq!(
            bad(r#"{ a(code: "x\u0000") }"#, serde_json::json!({})),
            Some(("code".into(), '\0'))
        );
        assert_eq!(
            bad(
                "mutation($i: In!) { up(input: $i) { id } }",
                serde_json::json!({ "i": { "name": "ok", "tags": ["fine", "bad\u{1}"] } })
            ),
            Some(("tags".into(), '\u{1}'))
        );
        assert_eq!(
            bad(
                "query($c: String) { a { b(category: $c) } }",
                serde_json::json!({ "c": "\u{0}" })
            ),
            Some(("category".into(), '\0'))
        );
        assert_eq!(
            bad("{ a }", serde_json::json!({ "unused": "\u{0}" })),
            Some(("unused".into(), '\0'))
        );
        assert_eq!(
            bad(
                "query { ...F } fragment F on Query { a(note: \"x\\u0007\") }",
                serde_json::json!({})
            ),
            Some(("note".into(), '\u{7}'))
        );
        assert_eq!(
            bad(r#"{ a(note: "两行\n\t文字") }"#, serde_json::json!({})),
            None
        );
    }

    proptest! {
        #[test]
        fn the_largest_bounded_price_times_quantity_and_a_multiplier_never_overflows(
            price in POINTS, quantity in 1i64..=100, multiplier_pct in 0i64..=1000
        ) {
            let cost = price.checked_mul(quantity).and_then(|c| c.checked_mul(multiplier_pct));
            prop_assert!(cost.is_some());
        }

        #[test]
        fn any_decimal_converts_or_is_refused_without_panicking(
            mantissa in any::<i64>(), scale in 0u32..=28
        ) {
            let _ = yuan_to_fen("amount", Decimal::new(mantissa, scale));
        }
    }
}
