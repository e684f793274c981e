//! Per-request batching of the lookups a list makes per row (async-graphql's `DataLoader`): a
//! page of 100 orders asks for its items in one statement, not 100. Each request gets its own
//! `Loaders` (so nothing is cached across requests); a loader is made the first time a resolver
//! asks for it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Iterable, ModelTrait, PrimaryKeyToColumn,
    QueryFilter, Value,
};

use crate::error::{AppError, AppResult};

/// A request's loader: batched, and caching what it loaded for the rest of the request.
pub type Batched<L> = DataLoader<L, HashMapCache>;

/// A loader made from the database connection, keyed by a row id.
pub trait RequestLoader: Loader<i64, Error = Arc<AppError>> + Sized {
    fn new(db: DatabaseConnection) -> Self;
}

/// The request's loaders, in its GraphQL context data.
pub struct Loaders {
    db: DatabaseConnection,
    made: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Loaders {
    pub fn new(db: DatabaseConnection) -> Self {
        Loaders {
            db,
            made: Mutex::new(HashMap::new()),
        }
    }

    pub fn get<L: RequestLoader>(&self) -> Arc<Batched<L>> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        let any = made
            .entry(TypeId::of::<L>())
            .or_insert_with(|| {
                Arc::new(Self::loader::<L>(self.db.clone())) as Arc<dyn Any + Send + Sync>
            })
            .clone();
        drop(made);
        match any.downcast::<Batched<L>>() {
            Ok(loader) => loader,
            // Entries are keyed by the loader's own type, so this cannot happen; a fresh
            // loader is still correct, only unbatched.
            Err(_) => Arc::new(Self::loader::<L>(self.db.clone())),
        }
    }

    /// Lookups arriving within the loader's delay go out as one statement; a row asked for
    /// twice in one request is loaded once. Requests run on the multi-threaded runtime (see
    /// `http::serve`), where the batch's timer runs beside the resolvers still adding to it, so
    /// the delay must cover resolving a page's rows: 1 ms cut a 100-row page's batches in three
    /// on a debug build.
    fn loader<L: RequestLoader>(db: DatabaseConnection) -> Batched<L> {
        DataLoader::with_cache(L::new(db), tokio::spawn, HashMapCache::default())
            .delay(LOADER_DELAY)
    }
}

const LOADER_DELAY: std::time::Duration = std::time::Duration::from_millis(3);

/// Loading through the request's loaders from a resolver.
pub trait LoadExt {
    /// The value `L` has for `id`, batched with every other lookup of this request.
    fn load_one<L: RequestLoader>(
        &self,
        id: i64,
    ) -> impl Future<Output = AppResult<Option<L::Value>>> + Send;
}

impl LoadExt for Context<'_> {
    async fn load_one<L: RequestLoader>(&self, id: i64) -> AppResult<Option<L::Value>> {
        let loaders = self
            .data_opt::<Loaders>()
            .ok_or_else(|| AppError::internal("Loaders missing from the request"))?;
        loaders
            .get::<L>()
            .load_one(id)
            .await
            .map_err(|e| AppError::internal(format!("batched load: {e}")))
    }
}

/// Rows of one table by their `i64` primary key.
pub struct ById<E>(DatabaseConnection, PhantomData<fn() -> E>);

impl<E> RequestLoader for ById<E>
where
    E: EntityTrait,
    E::Model: Clone + Send + Sync,
{
    fn new(db: DatabaseConnection) -> Self {
        ById(db, PhantomData)
    }
}

impl<E> Loader<i64> for ById<E>
where
    E: EntityTrait,
    E::Model: Clone + Send + Sync,
{
    type Value = E::Model;
    type Error = Arc<AppError>;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, E::Model>, Self::Error> {
        let Some(key) = E::PrimaryKey::iter().next() else {
            return Ok(HashMap::new());
        };
        let column = key.into_column();
        let rows = E::find()
            .filter(column.is_in(ids.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(AppError::from(e)))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.get(column) {
                Value::BigInt(Some(id)) => Some((id, row)),
                Value::Int(Some(id)) => Some((i64::from(id), row)),
                _ => None,
            })
            .collect())
    }
}
