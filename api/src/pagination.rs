//! Cursor pagination shared by every connection: `first` (at most 100) and an opaque `after`.

use async_graphql::SimpleObject;
use base64::Engine;

use crate::error::{AppError, AppResult};

pub const MAX_PAGE_SIZE: i32 = 100;
pub const DEFAULT_PAGE_SIZE: i32 = 20;

#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A validated page request: how many rows, and the id to continue after (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u64,
    pub after_id: Option<i64>,
}

const CURSOR: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode_cursor(id: i64) -> String {
    CURSOR.encode(format!("id:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let raw = CURSOR.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("id:")?
        .parse()
        .ok()
}

/// A list field's complexity (`#[graphql(complexity = "...")]`): its selection once per row it
/// may return, so a client asking for 100 rows pays for 100.
pub fn page_cost(first: Option<i32>, default: i32, child_complexity: usize) -> usize {
    let rows = first.unwrap_or(default).clamp(1, MAX_PAGE_SIZE) as usize;
    rows.saturating_mul(child_complexity)
}

pub fn page_request(first: Option<i32>, after: Option<&str>) -> AppResult<PageRequest> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::validation(
            "first",
            format!("first must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    let after_id = match after {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            AppError::validation("after", "after is not a cursor from this list")
        })?),
    };
    Ok(PageRequest {
        limit: first as u64,
        after_id,
    })
}

/// Given up to `limit + 1` rows fetched newest first, keeps `limit` and says whether more exist.
pub fn finish_page<T>(
    mut rows: Vec<T>,
    page: PageRequest,
    id_of: impl Fn(&T) -> i64,
) -> (Vec<T>, PageInfo) {
    let has_next_page = rows.len() as u64 > page.limit;
    rows.truncate(page.limit as usize);
    let end_cursor = rows.last().map(|r| encode_cursor(id_of(r)));
    (
        rows,
        PageInfo {
            has_next_page,
            end_cursor,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_costs_its_selection_once_per_row_it_may_return() {
        assert_eq!(page_cost(Some(100), 20, 5), 500);
        assert_eq!(page_cost(None, 20, 5), 100);
        assert_eq!(page_cost(Some(0), 20, 5), 5);
        assert_eq!(page_cost(Some(i32::MAX), 20, 5), 500);
        assert_eq!(page_cost(Some(-3), 20, 5), 5);
    }

    #[test]
    fn pages_are_capped_at_one_hundred() {
        assert_eq!(page_request(None, None).unwrap().limit, 20);
        assert_eq!(page_request(Some(100), None).unwrap().limit, 100);
        assert_eq!(
            page_request(Some(101), None).unwrap_err().code(),
            "VALIDATION"
        );
        assert!(page_request(Some(-1), None).is_err());
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let page = page_request(Some(5), Some(&encode_cursor(42))).unwrap();
        assert_eq!(page.after_id, Some(42));
        assert!(page_request(None, Some("42")).is_err());
    }

    #[test]
    fn a_page_knows_whether_more_rows_follow() {
        let page = page_request(Some(2), None).unwrap();
        let (rows, info) = finish_page(vec![9, 8, 7], page, |r| *r);
        assert_eq!(rows, vec![9, 8]);
        assert!(info.has_next_page);
        assert_eq!(info.end_cursor, Some(encode_cursor(8)));
        let (_, info) = finish_page(vec![9], page, |r| *r);
        assert!(!info.has_next_page);
    }
}
