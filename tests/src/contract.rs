//! Checks a served schema against the contract SDL that front ends are written against.
//! Adding is free; every contract type, field, argument, input field and enum value must be
//! served with a compatible type. Findings are named by schema coordinate (`Type.field(arg:)`),
//! so a list of "not built yet" coordinates can excuse them one by one.

use std::collections::HashMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `Type`, `Type.field`, `Type.field(arg:)` or `Enum.VALUE`.
    pub coordinate: String,
    pub problem: String,
}

fn types(sdl: &str) -> HashMap<String, TypeKind> {
    let doc = parse_schema(sdl).expect("the SDL parses");
    doc.definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node.kind)),
            _ => None,
        })
        .collect()
}

/// A served output type may be stricter (non-null) than the contract's, never looser.
fn output_compatible(contract: &Type, served: &Type) -> bool {
    if !contract.nullable && served.nullable {
        return false;
    }
    match (&contract.base, &served.base) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => output_compatible(a, b),
        _ => false,
    }
}

/// A served input type may accept more (nullable) than the contract's, never less: a nullable
/// contract argument served as non-null refuses the explicit `null` (or nullable variable) a
/// contract client may send, default or not.
fn input_compatible(contract: &Type, served: &Type) -> bool {
    if contract.nullable && !served.nullable {
        return false;
    }
    match (&contract.base, &served.base) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => input_compatible(a, b),
        _ => false,
    }
}

fn check_inputs(
    owner: &str,
    contract: &[async_graphql::Positioned<InputValueDefinition>],
    served: &[async_graphql::Positioned<InputValueDefinition>],
    argument_style: bool,
    findings: &mut Vec<Finding>,
) {
    let coordinate = |name: &str| {
        if argument_style {
            format!("{owner}({name}:)")
        } else {
            format!("{owner}.{name}")
        }
    };
    for c in contract {
        let name = c.node.name.node.as_str();
        let Some(s) = served.iter().find(|s| s.node.name.node == c.node.name.node) else {
            findings.push(Finding {
                coordinate: coordinate(name),
                problem: "missing".into(),
            });
            continue;
        };
        let served_default = s.node.default_value.as_ref().map(|d| d.node.clone());
        if !input_compatible(&c.node.ty.node, &s.node.ty.node) {
            findings.push(Finding {
                coordinate: coordinate(name),
                problem: format!(
                    "contract type {} but served {}",
                    c.node.ty.node, s.node.ty.node
                ),
            });
        }
        if let Some(contract_default) = &c.node.default_value
            && served_default.as_ref() != Some(&contract_default.node)
        {
            findings.push(Finding {
                coordinate: coordinate(name),
                problem: format!(
                    "contract default {} but served {:?}",
                    contract_default.node,
                    served_default.map(|d| d.to_string())
                ),
            });
        }
    }
    for s in served {
        let is_new = !contract
            .iter()
            .any(|c| c.node.name.node == s.node.name.node);
        if is_new && !s.node.ty.node.nullable && s.node.default_value.is_none() {
            findings.push(Finding {
                coordinate: coordinate(s.node.name.node.as_str()),
                problem: "a new required input that contract clients do not send".into(),
            });
        }
    }
}

fn check_fields(
    type_name: &str,
    contract: &[async_graphql::Positioned<FieldDefinition>],
    served: &[async_graphql::Positioned<FieldDefinition>],
    findings: &mut Vec<Finding>,
) {
    for c in contract {
        let coordinate = format!("{type_name}.{}", c.node.name.node);
        let Some(s) = served.iter().find(|s| s.node.name.node == c.node.name.node) else {
            findings.push(Finding {
                coordinate,
                problem: "missing".into(),
            });
            continue;
        };
        if !output_compatible(&c.node.ty.node, &s.node.ty.node) {
            findings.push(Finding {
                coordinate: coordinate.clone(),
                problem: format!(
                    "contract type {} but served {}",
                    c.node.ty.node, s.node.ty.node
                ),
            });
        }
        check_inputs(
            &coordinate,
            &c.node.arguments,
            &s.node.arguments,
            true,
            findings,
        );
    }
}

/// Everything in `contract_sdl` that `served_sdl` lacks or serves incompatibly.
pub fn check(contract_sdl: &str, served_sdl: &str) -> Vec<Finding> {
    let contract = types(contract_sdl);
    let served = types(served_sdl);
    let mut findings = Vec::new();
    let mut names: Vec<_> = contract.keys().collect();
    names.sort();
    for name in names {
        let c = &contract[name];
        let Some(s) = served.get(name) else {
            findings.push(Finding {
                coordinate: name.clone(),
                problem: "missing".into(),
            });
            continue;
        };
        match (c, s) {
            (TypeKind::Scalar, TypeKind::Scalar) => {}
            (TypeKind::Object(c), TypeKind::Object(s)) => {
                check_fields(name, &c.fields, &s.fields, &mut findings)
            }
            (TypeKind::Interface(c), TypeKind::Interface(s)) => {
                check_fields(name, &c.fields, &s.fields, &mut findings)
            }
            (TypeKind::InputObject(c), TypeKind::InputObject(s)) => {
                check_inputs(name, &c.fields, &s.fields, false, &mut findings)
            }
            (TypeKind::Enum(c), TypeKind::Enum(s)) => {
                for v in &c.values {
                    if !s
                        .values
                        .iter()
                        .any(|sv| sv.node.value.node == v.node.value.node)
                    {
                        findings.push(Finding {
                            coordinate: format!("{name}.{}", v.node.value.node),
                            problem: "missing enum value".into(),
                        });
                    }
                }
            }
            (TypeKind::Union(c), TypeKind::Union(s)) => {
                for m in &c.members {
                    if !s.members.iter().any(|sm| sm.node == m.node) {
                        findings.push(Finding {
                            coordinate: format!("{name}.{}", m.node),
                            problem: "missing union member".into(),
                        });
                    }
                }
            }
            _ => findings.push(Finding {
                coordinate: name.clone(),
                problem: "served as another kind of type".into(),
            }),
        }
    }
    findings
}

/// Whether `coordinate` is excused by an entry of `not_built`: the same coordinate, or the type
/// or field it belongs to.
pub fn excused(coordinate: &str, not_built: &[&str]) -> bool {
    not_built.iter().any(|entry| {
        coordinate == *entry
            || coordinate.starts_with(&format!("{entry}."))
            || coordinate.starts_with(&format!("{entry}("))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = r#"
        type Query { me: Member!  list(first: Int = 20, after: String): [Member!]! }
        type Member { id: ID!  nickname: String  tags: [String!] }
        input ProfileInput { nickname: String  age: Int! }
        enum Kind { A B }
    "#;

    #[test]
    fn an_equal_schema_is_compatible() {
        assert_eq!(check(CONTRACT, CONTRACT), vec![]);
    }

    #[test]
    fn stricter_outputs_looser_inputs_and_additions_are_compatible() {
        let served = r#"
            type Query { me: Member!  list(first: Int = 20, after: String, extra: Int): [Member!]!  more: Int }
            type Member { id: ID!  nickname: String!  tags: [String!]!  extra: Int }
            input ProfileInput { nickname: String  age: Int  newOne: String }
            enum Kind { A B C }
        "#;
        assert_eq!(check(CONTRACT, served), vec![]);
    }

    #[test]
    fn missing_and_incompatible_items_are_named_by_coordinate() {
        let served = r#"
            type Query { me: Member  list(first: Int = 10): [Member!]! }
            type Member { id: String!  tags: [Int!] }
            input ProfileInput { nickname: String!  age: Int!  must: Int! }
            enum Kind { A }
        "#;
        let found: Vec<String> = check(CONTRACT, served)
            .into_iter()
            .map(|f| f.coordinate)
            .collect();
        for expected in [
            "Query.me",
            "Query.list(first:)",
            "Query.list(after:)",
            "Member.id",
            "Member.nickname",
            "Member.tags",
            "ProfileInput.nickname",
            "ProfileInput.must",
            "Kind.B",
        ] {
            assert!(
                found.contains(&expected.to_string()),
                "{expected} not in {found:?}"
            );
        }
    }

    #[test]
    fn a_nullable_argument_served_as_non_null_is_a_finding_even_with_a_default() {
        let served = r#"
            type Query { me: Member!  list(first: Int! = 20, after: String): [Member!]! }
            type Member { id: ID!  nickname: String  tags: [String!] }
            input ProfileInput { nickname: String  age: Int! }
            enum Kind { A B }
        "#;
        let found: Vec<String> = check(CONTRACT, served)
            .into_iter()
            .map(|f| f.coordinate)
            .collect();
        assert_eq!(found, vec!["Query.list(first:)".to_string()]);
    }

    #[test]
    fn an_entry_excuses_its_own_fields_and_arguments() {
        assert!(excused("Tier", &["Tier"]));
        assert!(excused("Tier.code", &["Tier"]));
        assert!(excused("Query.tiers", &["Query.tiers"]));
        assert!(excused("Query.tiers(first:)", &["Query.tiers"]));
        assert!(!excused("Query.tiersX", &["Query.tiers"]));
    }
}
