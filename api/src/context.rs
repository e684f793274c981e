//! What one GraphQL request knows about itself: when it runs, who calls, from which device.
//! Resolvers read it through `ContextExt`, never from headers.

use async_graphql::Context;
use chrono::{DateTime, Utc};

use crate::auth::AdminPrincipal;
use crate::error::{AppError, AppResult};
use crate::member::MemberId;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Member {
        id: i64,
        session: Option<String>,
    },
    Admin(AdminPrincipal),
    /// A token was sent but refused; the reason is told to fields that need a caller.
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub now: DateTime<Utc>,
    pub caller: Caller,
    pub device_id: Option<String>,
    pub ip: Option<String>,
}

pub trait ContextExt {
    fn app(&self) -> AppResult<&AppState>;
    fn request(&self) -> AppResult<&RequestContext>;
    fn now(&self) -> AppResult<DateTime<Utc>> {
        Ok(self.request()?.now)
    }
    /// The signed-in member's id, or UNAUTHENTICATED.
    fn member_id(&self) -> AppResult<MemberId> {
        match &self.request()?.caller {
            Caller::Member { id, .. } => Ok(MemberId::new(*id)),
            Caller::Refused(reason) => Err(AppError::unauthenticated(reason.clone())),
            _ => Err(AppError::unauthenticated("sign in first")),
        }
    }
    /// The signed-in admin, or UNAUTHENTICATED.
    fn admin(&self) -> AppResult<&AdminPrincipal> {
        match &self.request()?.caller {
            Caller::Admin(admin) => Ok(admin),
            Caller::Refused(reason) => Err(AppError::unauthenticated(reason.clone())),
            _ => Err(AppError::unauthenticated("sign in as an admin first")),
        }
    }
}

impl ContextExt for Context<'_> {
    fn app(&self) -> AppResult<&AppState> {
        self.data_opt::<AppState>()
            .ok_or_else(|| AppError::internal("AppState missing from the schema"))
    }

    fn request(&self) -> AppResult<&RequestContext> {
        self.data_opt::<RequestContext>()
            .ok_or_else(|| AppError::internal("RequestContext missing from the request"))
    }
}
