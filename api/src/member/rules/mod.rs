//! Pure rules of the member center: the profile, and tiers, growth, purchases, birthdays, RFM.

pub mod profile;
pub mod tier;

pub use profile::*;
