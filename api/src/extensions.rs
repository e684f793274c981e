//! Typed slots that modules fill at start-up (a cache of their own, a lookup they provide), so
//! that shared state (`AppState`) can carry them without naming the modules: the composition
//! root (`startup`) registers them; a module asks for its own type back.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{AppError, AppResult};

#[derive(Default, Clone)]
pub struct Extensions(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} registered)", self.0.len())
    }
}

impl Extensions {
    /// Adds `value`, replacing one of the same type.
    pub fn with<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The value of type `T`; INTERNAL if start-up registered none (a wiring bug).
    pub fn get<T: Any + Send + Sync>(&self) -> AppResult<&T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .ok_or_else(|| {
                AppError::internal(format!(
                    "{} was not registered at start-up",
                    std::any::type_name::<T>()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Cache(u32);

    #[test]
    fn a_registered_value_comes_back_by_its_type_and_a_missing_one_is_an_error() {
        let ext = Extensions::default().with(Cache(7)).with(String::from("x"));
        assert_eq!(ext.get::<Cache>().unwrap(), &Cache(7));
        assert_eq!(ext.get::<String>().unwrap(), "x");
        assert_eq!(ext.get::<u64>().unwrap_err().code(), "INTERNAL");
    }
}
