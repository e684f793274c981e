//! The authentication items of the hardening issue (4, 9 and 10), one test or more per item,
//! named after it.

use loyalty_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

const ME: &str = "{ me { id } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken member { id } } }";

fn pair(answer: &loyalty_tests::Gql) -> (String, String) {
    let session = &answer.data()["refreshSession"];
    (
        session["accessToken"].as_str().unwrap().to_string(),
        session["refreshToken"].as_str().unwrap().to_string(),
    )
}

/// A second instance of the app on the same database and the same Redis (prefix included), as a
/// load balancer would run it.
struct Twin {
    address: String,
    client: reqwest::Client,
    stopper: api::startup::Stopper,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Twin {
    async fn start(app: &TestApp) -> Twin {
        let mut settings = (*app.state.settings).clone();
        settings.port = 0;
        let twin = api::startup::Application::build(settings)
            .await
            .expect("the twin starts");
        let address = format!("http://127.0.0.1:{}", twin.port());
        let stopper = twin.stopper();
        let running = Some(tokio::spawn(twin.run_until_stopped()));
        Twin {
            address,
            client: reqwest::Client::new(),
            stopper,
            running,
        }
    }

    async fn me(&self, token: &str) -> Value {
        self.client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .expect("the twin answers")
            .json()
            .await
            .expect("a JSON body")
    }

    async fn stop(mut self) {
        self.stopper.stop(false).await;
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
    }
}

// ------------------------------------------------------------------ item 10

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_parallel_refreshes_of_one_token_all_get_the_same_working_pair() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let attempts = (0..8).map(|_| app.gql(None, REFRESH, json!({ "t": member.refresh_token })));
    let answers = futures_util::future::join_all(attempts).await;
    let pairs: Vec<_> = answers.iter().map(pair).collect();
    assert!(
        pairs.iter().all(|p| *p == pairs[0]),
        "every racer gets the same successor pair: {pairs:?}"
    );
    let (access, refresh) = pairs[0].clone();
    assert_ne!(refresh, member.refresh_token);
    // The pair works: the session was not revoked by the race.
    app.gql(Some(&access), ME, json!({})).await.data();
    app.gql(None, REFRESH, json!({ "t": refresh })).await.data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_a_spent_token_replays_its_pair_within_the_grace_window_and_revokes_the_session_after_it()
 {
    let app = spawn_app().await;
    app.at("2030-01-01T00:00:00Z");
    let member = app.login("alice").await;
    app.at("2030-01-01T00:00:01Z");
    let first = pair(
        &app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
            .await,
    );
    app.at("2030-01-01T00:00:30Z");
    let replayed = pair(
        &app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
            .await,
    );
    assert_eq!(replayed, first, "within 30 s the same pair comes back");

    // Past the window a replay is reuse: the whole session ends, access tokens included.
    app.at("2030-01-01T00:00:32Z");
    app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(None, REFRESH, json!({ "t": first.1 }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&first.0), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&member.token), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_logout_ends_the_sessions_access_tokens_at_once() {
    let app = spawn_app().await;
    let phone = app.login("alice").await;
    let tablet = app.login("alice").await;
    phone.gql("mutation { logout }", json!({})).await.data();
    phone
        .gql(ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    phone
        .gql("mutation { logout }", json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    // Another sign-in of the same member is another session.
    tablet.gql(ME, json!({})).await.data();
    // A token refreshed a moment before the logout ends with it (grace replay included).
    let refreshed = pair(
        &app.gql(None, REFRESH, json!({ "t": tablet.refresh_token }))
            .await,
    );
    app.gql(Some(&refreshed.0), "mutation { logout }", json!({}))
        .await
        .data();
    app.gql(None, REFRESH, json!({ "t": tablet.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&refreshed.0), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item10_a_revoked_session_is_refused_by_every_instance() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let early = Twin::start(&app).await;
    early.me(&member.token).await["data"]["me"]["id"]
        .as_str()
        .expect("the twin knows the session");
    member.gql("mutation { logout }", json!({})).await.data();

    // An instance started after the logout (or restarted) knows it: from Redis, or from the
    // database without Redis.
    let late = Twin::start(&app).await;
    let refused = late.me(&member.token).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    // With Redis, an instance that was already running knows it at its next request. Without
    // Redis (one instance only) it would within 30 s.
    if std::env::var("REDIS_URL").is_ok() {
        let refused = early.me(&member.token).await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{refused}"
        );
    }
    late.stop().await;
    early.stop().await;
}
