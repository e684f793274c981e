//! Failures the soak test (`cargo run -p bench -- soak`) found, each reduced to the smallest
//! black-box run that shows it.

use api::auth::AdminRole;
use futures_util::future::join_all;
use loyalty_tests::{TestMember, spawn_app};
use serde_json::json;

use crate::points::{adjust, assert_audit_ok, points_of};

const T0: &str = "2026-01-10T10:00:00+08:00";
const LATER_CREDIT: &str = "2027-02-10T10:00:00+08:00";
/// Past the first credits' 730 days, before the later ones'.
const EXPIRY: &str = "2028-01-15T10:00:00+08:00";

/// Soak finding 1: `runJob(EXPIRE_POINTS)` answered INTERNAL ("member holds less than lot")
/// when a member spent from a due lot after the job had read it: the job expired the amount
/// the lot held when it was read, which the member no longer had. The job must expire what is
/// left of the lot when it gets to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_expiry_job_meets_a_lot_spent_from_after_it_read_it() {
    let app = spawn_app().await;
    app.at(T0);
    let admin = app.admin(AdminRole::Superadmin).await;
    // Members whose due lots the job works through first (lower lot ids)...
    let names: Vec<String> = (0..150).map(|i| format!("filler{i}")).collect();
    let mut fillers: Vec<TestMember<'_>> = Vec::new();
    for chunk in names.chunks(25) {
        fillers.extend(join_all(chunk.iter().map(|name| app.login(name))).await);
    }
    for chunk in fillers.chunks(25) {
        for answer in join_all(chunk.iter().map(|f| adjust(&admin, f, 100, "due"))).await {
            assert!(answer.error_code().is_none(), "{:?}", answer.body);
        }
    }
    // ...then members with a due lot of 1,000 and a later one of 10.
    let names: Vec<String> = (0..5).map(|i| format!("spender{i}")).collect();
    let spenders: Vec<TestMember<'_>> = join_all(names.iter().map(|name| app.login(name))).await;
    for s in &spenders {
        adjust(&admin, s, 1_000, "due").await;
    }
    app.at(LATER_CREDIT);
    let admin = app.admin(AdminRole::Superadmin).await;
    for s in &spenders {
        adjust(&admin, s, 10, "later").await;
    }

    // Sessions last hours; sign everyone in again at the time of the expiry.
    app.at(EXPIRY);
    let admin = app.admin(AdminRole::Superadmin).await;
    let first_filler = app.login("filler0").await;
    let spenders: Vec<TestMember<'_>> = join_all(names.iter().map(|name| app.login(name))).await;
    let job = admin.gql(
        "mutation { runJob(name: EXPIRE_POINTS) { affected } }",
        json!({}),
    );
    let spend = async {
        // Once the first filler's lot has expired, the job has read its batch; now the
        // spenders take 995 each from their due lot, before the job gets to it.
        while points_of(&first_filler).await.0 != 0 {
            tokio::task::yield_now().await;
        }
        let project = admin
            .gql(
                "mutation { upsertDonationProject(input: { name: \"x\", description: \"x\", targetPoints: 100000 }) { id } }",
                json!({}),
            )
            .await;
        let project = project.data()["upsertDonationProject"]["id"].clone();
        join_all(spenders.iter().enumerate().map(|(i, s)| {
            s.gql(
                "mutation($p: ID!, $k: String!) { donatePoints(projectId: $p, points: 995, idempotencyKey: $k) { id } }",
                json!({ "p": project, "k": format!("spend-{i}") }),
            )
        }))
        .await
    };
    let (job, spent) = futures_util::join!(job, spend);
    assert_eq!(job.error_code(), None, "the job: {:?}", job.body);
    for answer in &spent {
        assert!(
            matches!(answer.error_code(), None | Some("INSUFFICIENT_POINTS")),
            "a spend: {:?}",
            answer.body
        );
    }
    // Whatever the order, each spender ends with the later lot's 10 points: the due lot's
    // remaining 5 expired (or, had the job come first, 1,000 expired and the spend failed).
    for s in &spenders {
        assert_eq!(points_of(s).await.0, 10);
    }
    assert_audit_ok(&admin).await;
}
