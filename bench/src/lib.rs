//! The benchmark's library part: the shop seeder, which the benchmark, the soak test and the
//! seeder's own tests share. It writes past the ledger in bulk (rows the use cases could have
//! written), so it lives here, not in the production library.

pub mod shop;
