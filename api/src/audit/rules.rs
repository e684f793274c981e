//! Pure rules of the audit log: which attempts get a row each, which are sampled, and how many
//! mutation fields a request carries.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

/// Top-level mutation fields a request without a valid admin token may carry: `adminLogin` needs
/// one, and more would let one anonymous request write (or try) hundreds of things.
pub const MAX_ANONYMOUS_MUTATION_FIELDS: usize = 1;

/// Sampled rows: at most this many per caller per window.
pub const SAMPLED_ROWS: u64 = 1;
pub const SAMPLE_WINDOW_SECONDS: i64 = 60;

/// How a finished top-level admin mutation is written to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A row, always: what an admin did or tried within their rights, and every success.
    Row,
    /// A row for the caller's first refusal in the window, nothing for the rest: refusals of
    /// unauthenticated callers, and guard refusals of admins, cost an attacker nothing to repeat.
    Sampled,
}

pub fn write_for(signed_in: bool, outcome: &str) -> Write {
    match outcome {
        "ok" => Write::Row,
        _ if !signed_in => Write::Sampled,
        "UNAUTHENTICATED" | "FORBIDDEN" => Write::Sampled,
        _ => Write::Row,
    }
}

/// The most top-level fields any mutation the request may run selects, through fragments too
/// (`__typename` aside); 0 for queries. With no operation name, every mutation in the document
/// counts, since which one runs is not settled yet.
pub fn mutation_fields(doc: &ExecutableDocument, operation_name: Option<&str>) -> usize {
    let count = |set: &SelectionSet| count_fields(doc, set, &mut HashSet::new());
    match &doc.operations {
        DocumentOperations::Single(op) => {
            if op.node.ty == OperationType::Mutation {
                count(&op.node.selection_set.node)
            } else {
                0
            }
        }
        DocumentOperations::Multiple(ops) => ops
            .iter()
            .filter(|(name, _)| operation_name.is_none_or(|wanted| name.as_str() == wanted))
            .filter(|(_, op)| op.node.ty == OperationType::Mutation)
            .map(|(_, op)| count(&op.node.selection_set.node))
            .max()
            .unwrap_or(0),
    }
}

fn count_fields(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    // Fragments already counted on this path: a cycle (invalid, but not yet validated) ends.
    seen: &mut HashSet<String>,
) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => usize::from(field.node.name.node != "__typename"),
            Selection::InlineFragment(fragment) => {
                count_fields(doc, &fragment.node.selection_set.node, seen)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match doc.fragments.get(name) {
                    Some(fragment) if seen.insert(name.to_string()) => {
                        let n = count_fields(doc, &fragment.node.selection_set.node, seen);
                        seen.remove(name);
                        n
                    }
                    _ => 0,
                }
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn fields(query: &str, operation: Option<&str>) -> usize {
        mutation_fields(&parse_query(query).unwrap(), operation)
    }

    #[test]
    fn top_level_mutation_fields_are_counted_through_aliases_and_fragments() {
        assert_eq!(fields("mutation { a }", None), 1);
        assert_eq!(fields("mutation { x: a y: a __typename }", None), 2);
        assert_eq!(fields("mutation { a { b c d } }", None), 1);
        assert_eq!(
            fields(
                "mutation { a ...F ... on Mutation { c } } fragment F on Mutation { b }",
                None
            ),
            3
        );
        assert_eq!(fields("{ a b c }", None), 0);
    }

    #[test]
    fn the_named_operation_counts_or_else_the_largest_mutation() {
        let doc = "query Q { a b c } mutation One { a } mutation Two { a b }";
        assert_eq!(fields(doc, Some("Q")), 0);
        assert_eq!(fields(doc, Some("One")), 1);
        assert_eq!(fields(doc, None), 2);
    }

    #[test]
    fn a_fragment_cycle_ends() {
        let doc =
            "mutation { ...F } fragment F on Mutation { a ...G } fragment G on Mutation { b ...F }";
        assert_eq!(fields(doc, None), 2);
    }

    #[test]
    fn successes_and_an_admins_own_errors_get_a_row_and_refusals_are_sampled() {
        assert_eq!(write_for(false, "ok"), Write::Row);
        assert_eq!(write_for(true, "ok"), Write::Row);
        assert_eq!(write_for(true, "VALIDATION"), Write::Row);
        assert_eq!(write_for(true, "INTERNAL"), Write::Row);
        assert_eq!(write_for(true, "FORBIDDEN"), Write::Sampled);
        assert_eq!(write_for(true, "UNAUTHENTICATED"), Write::Sampled);
        assert_eq!(write_for(false, "UNAUTHENTICATED"), Write::Sampled);
        assert_eq!(write_for(false, "RATE_LIMITED"), Write::Sampled);
    }
}
