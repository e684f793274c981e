//! Scalars of the contract that async-graphql does not name the same way.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

/// A day of the business calendar (APP_TIMEZONE), `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("{s:?} is not a date like 2026-03-01"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

/// The number inside an `ID` argument, or VALIDATION naming the argument.
pub fn id_number(id: &async_graphql::ID, field: &str) -> crate::AppResult<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        crate::AppError::validation(field, format!("{field} is not an id from this API"))
    })
}
