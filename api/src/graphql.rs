//! The two schemas: members on `/graphql`, operators on `/admin/graphql`. Separate types, so
//! nothing of the admin API is visible from the member endpoint. Each module adds its
//! Query/Mutation part to the `MergedObject`s here.

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

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
    };
    (
        member_schema(&limits, true, None).sdl(),
        admin_schema(&limits, true, None).sdl(),
    )
}
