//! Pure rules of the member center: the profile, and tiers, growth, purchases, birthdays, RFM.

pub mod birthday;
pub mod earning;
pub mod profile;
pub mod rfm;
pub mod tier;

pub use profile::*;
