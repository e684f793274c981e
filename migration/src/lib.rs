//! Database migrations, one file per change. A migration that has landed is never edited:
//! a change to the schema is a new file appended to `Migrator::migrations`.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261124_000001_foundation;
mod m20261124_000002_points;
mod m20261124_000003_member_center;
mod m20261124_000004_checkin_tasks;
mod m20261124_000005_mall;
mod m20261124_000006_blindbox;
mod m20261124_000007_achievements;
mod m20261201_000001_provably_fair;
mod m20261201_000002_auth_hardening;
mod m20261201_000004_order_origin;
mod m20261201_000005_idempotency;
mod m20261202_000001_job_last_run;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_foundation::Migration),
            Box::new(m20261124_000002_points::Migration),
            Box::new(m20261124_000003_member_center::Migration),
            Box::new(m20261124_000004_checkin_tasks::Migration),
            Box::new(m20261124_000005_mall::Migration),
            Box::new(m20261124_000006_blindbox::Migration),
            Box::new(m20261124_000007_achievements::Migration),
            Box::new(m20261201_000001_provably_fair::Migration),
            Box::new(m20261201_000002_auth_hardening::Migration),
            Box::new(m20261201_000004_order_origin::Migration),
            Box::new(m20261201_000005_idempotency::Migration),
            Box::new(m20261202_000001_job_last_run::Migration),
        ]
    }
}
