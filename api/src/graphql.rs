//! The two schemas: members on `/graphql`, operators on `/admin/graphql`. Separate types, so
//! nothing of the admin API is visible from the member endpoint. Each module adds its
//! Query/Mutation part to the `MergedObject`s here.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    EmptySubscription, ErrorExtensionValues, MergedObject, Schema, SchemaBuilder, ServerError,
    ServerResult, Variables,
};

use crate::achievement::{AchievementAdminMutation, AchievementMutation, AchievementQuery};
use crate::anticheat::{AnticheatAdminMutation, AnticheatAdminQuery, CaptchaMutation};
use crate::audit::{AuditMutations, AuditQuery};
use crate::auth::{AdminAuthMutation, AdminAuthQuery, MemberAuthMutation};
use crate::blindbox::{BlindBoxAdminMutation, BlindBoxAdminQuery, BlindBoxMutation, BlindBoxQuery};
use crate::checkin::{CheckInAdminMutation, CheckInAdminQuery, CheckInMutation, CheckInQuery};
use crate::config::GraphqlLimits;
use crate::jobs::JobsAdminMutation;
use crate::mall::{MallAdminMutation, MallMutation, MallQuery};
use crate::member::{
    MemberAdminMutation, MemberAdminQuery, MemberQuery as ProfileQuery, ProfileMutation,
};
use crate::points::{PointsAdminMutation, PointsAdminQuery, PointsMutation, PointsQuery};
use crate::state::AppState;
use crate::task::{TaskAdminMutation, TaskMutation, TaskQuery};

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct MemberQuery(
    ProfileQuery,
    PointsQuery,
    CheckInQuery,
    TaskQuery,
    MallQuery,
    BlindBoxQuery,
    AchievementQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MemberMutation(
    MemberAuthMutation,
    ProfileMutation,
    PointsMutation,
    CaptchaMutation,
    CheckInMutation,
    TaskMutation,
    MallMutation,
    BlindBoxMutation,
    AchievementMutation,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct AdminQuery(
    AdminAuthQuery,
    AuditQuery,
    PointsAdminQuery,
    AnticheatAdminQuery,
    MemberAdminQuery,
    CheckInAdminQuery,
    BlindBoxAdminQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct AdminMutation(
    AdminAuthMutation,
    PointsAdminMutation,
    AnticheatAdminMutation,
    JobsAdminMutation,
    MemberAdminMutation,
    CheckInAdminMutation,
    TaskAdminMutation,
    MallAdminMutation,
    BlindBoxAdminMutation,
    AchievementAdminMutation,
);

pub type MemberSchema = Schema<MemberQuery, MemberMutation, EmptySubscription>;
pub type AdminSchema = Schema<AdminQuery, AdminMutation, EmptySubscription>;

fn with_limits<Q, M>(
    builder: SchemaBuilder<Q, M, EmptySubscription>,
    limits: &GraphqlLimits,
    introspection: bool,
    state: Option<AppState>,
) -> SchemaBuilder<Q, M, EmptySubscription> {
    let mut builder = builder
        .extension(crate::input::PlainTextInputs)
        .extension(RootFieldLimit(limits.max_root_fields))
        .extension(OperationNames)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(16);
    if !introspection {
        // "Did you mean …?" would name what introspection hides.
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder
}

pub fn member_schema(
    limits: &GraphqlLimits,
    introspection: bool,
    state: Option<AppState>,
) -> MemberSchema {
    let builder = Schema::build(
        MemberQuery::default(),
        MemberMutation::default(),
        EmptySubscription,
    );
    with_limits(builder, limits, introspection, state).finish()
}

pub fn admin_schema(
    limits: &GraphqlLimits,
    introspection: bool,
    state: Option<AppState>,
) -> AdminSchema {
    let builder = Schema::build(
        AdminQuery::default(),
        AdminMutation::default(),
        EmptySubscription,
    )
    .extension(AuditMutations);
    with_limits(builder, limits, introspection, state).finish()
}

/// The served SDL of both endpoints, as committed in `api/schema/`.
pub fn sdl() -> (String, String) {
    let limits = GraphqlLimits {
        max_depth: 0,
        max_complexity: 0,
        max_body_bytes: 0,
        max_root_fields: 0,
    };
    (
        member_schema(&limits, true, None).sdl(),
        admin_schema(&limits, true, None).sdl(),
    )
}

/// Refuses, before anything runs, an operation that selects more root fields (aliases
/// included, fragments expanded) than `GRAPHQL_MAX_ROOT_FIELDS`: each root field is a use case
/// of its own, and a few hundred aliases of one were enough to stall the server.
struct RootFieldLimit(usize);

impl ExtensionFactory for RootFieldLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RootFieldLimit(self.0))
    }
}

#[async_trait::async_trait]
impl Extension for RootFieldLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let limit = self.0;
        if limit > 0
            && document
                .operations
                .iter()
                .any(|(_, op)| root_fields(&op.node.selection_set.node, &document, 0) > limit)
        {
            let mut error = ServerError::new(
                format!("an operation may select at most {limit} root fields, aliases included"),
                None,
            );
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", "VALIDATION");
            error.extensions = Some(extensions);
            return Err(error);
        }
        Ok(document)
    }
}

/// What the metrics and the access log say a request ran: its operation's name (from the
/// document when the request named none) and its root fields (response key, field name).
#[derive(Debug, Default, Clone)]
pub struct OperationInfo {
    pub name: Option<String>,
    root_fields: Vec<(String, String)>,
}

impl OperationInfo {
    /// The root fields' names, each once.
    pub fn fields(&self) -> impl Iterator<Item = String> + '_ {
        let mut seen = std::collections::HashSet::new();
        self.root_fields
            .iter()
            .filter(move |(_, field)| seen.insert(field.as_str()))
            .map(|(_, field)| field.clone())
    }

    /// The field behind a response key (an alias or the field's own name).
    pub fn field_of(&self, key: &str) -> Option<String> {
        self.root_fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, field)| field.clone())
    }
}

/// Where `OperationNames` leaves a request's `OperationInfo` for the HTTP layer.
#[derive(Clone, Default)]
pub struct OperationSlot(Arc<std::sync::Mutex<OperationInfo>>);

impl OperationSlot {
    pub fn take(&self) -> OperationInfo {
        self.0
            .lock()
            .map(|mut info| std::mem::take(&mut *info))
            .unwrap_or_default()
    }
}

/// Reads the operation's name and root fields off the parsed document. Root fields the schema
/// does not have (the request fails validation) are labelled `(unknown)`, so a client cannot
/// invent label values.
struct OperationNames;

impl ExtensionFactory for OperationNames {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationNamesOfRequest::default())
    }
}

#[derive(Default)]
struct OperationNamesOfRequest {
    requested: std::sync::Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for OperationNamesOfRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: async_graphql::extensions::NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut requested) = self.requested.lock() {
            requested.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let requested = self.requested.lock().ok().and_then(|r| r.clone());
        if let Some(slot) = ctx.data_opt::<OperationSlot>() {
            let info = operation_info(&document, requested.as_deref(), &ctx.schema_env.registry);
            if let Ok(mut stored) = slot.0.lock() {
                *stored = info;
            }
        }
        Ok(document)
    }
}

fn operation_info(
    document: &ExecutableDocument,
    requested: Option<&str>,
    registry: &async_graphql::registry::Registry,
) -> OperationInfo {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let operation = match (&document.operations, requested) {
        (DocumentOperations::Single(op), _) => Some((None, op)),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).map(|op| (Some(name.to_string()), op))
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .iter()
            .next()
            .map(|(name, op)| (Some(name.to_string()), op)),
        _ => None,
    };
    let Some((name, operation)) = operation else {
        return OperationInfo {
            name: requested.map(str::to_string),
            root_fields: Vec::new(),
        };
    };
    // A single operation's name is in the document only.
    let name = name.or_else(|| {
        document
            .operations
            .iter()
            .next()
            .and_then(|(n, _)| n.map(|n| n.to_string()))
    });
    let root_type = match operation.node.ty {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let root = root_type.and_then(|t| registry.types.get(t));
    let mut root_fields = Vec::new();
    collect_root_fields(
        &operation.node.selection_set.node,
        document,
        0,
        &mut |key, field| {
            let known =
                field.starts_with("__") || root.is_some_and(|t| t.field_by_name(field).is_some());
            let field = if known { field } else { "(unknown)" };
            root_fields.push((key.to_string(), field.to_string()));
        },
    );
    OperationInfo { name, root_fields }
}

fn collect_root_fields(
    set: &SelectionSet,
    document: &ExecutableDocument,
    depth: usize,
    found: &mut impl FnMut(&str, &str),
) {
    if depth > 16 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                found(field.response_key().node.as_str(), field.name.node.as_str());
            }
            Selection::InlineFragment(fragment) => collect_root_fields(
                &fragment.node.selection_set.node,
                document,
                depth + 1,
                found,
            ),
            Selection::FragmentSpread(spread) => {
                if let Some(f) = document.fragments.get(&spread.node.fragment_name.node) {
                    collect_root_fields(&f.node.selection_set.node, document, depth + 1, found)
                }
            }
        }
    }
}

/// Root fields a selection set selects, counting into inline fragments and fragment spreads (a
/// cycle of spreads, which validation refuses later, stops counting at depth 16).
fn root_fields(set: &SelectionSet, document: &ExecutableDocument, depth: usize) -> usize {
    if depth > 16 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                root_fields(&fragment.node.selection_set.node, document, depth + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    root_fields(&f.node.selection_set.node, document, depth + 1)
                }),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(query: &str) -> usize {
        let document = async_graphql::parser::parse_query(query).unwrap();
        document
            .operations
            .iter()
            .map(|(_, op)| root_fields(&op.node.selection_set.node, &document, 0))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn root_fields_count_aliases_and_fragments() {
        assert_eq!(count("{ a b c: a }"), 3);
        assert_eq!(
            count("{ a ...F ... on Query { b c } } fragment F on Query { d e }"),
            5
        );
        assert_eq!(count("{ ...F } fragment F on Query { ...F a }"), 16);
    }
}
