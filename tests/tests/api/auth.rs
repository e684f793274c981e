//! Member sign-in: mock WeChat login, tokens, refresh rotation, logout, token hygiene.

use base64::Engine;
use loyalty_tests::{TEST_JWT_SECRET, spawn_app};
use serde_json::json;

const ME: &str = "{ me { id memberNo nickname inviteCode } }";
const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken member { id } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_login_creates_the_member_once_and_me_answers() {
    let app = spawn_app().await;
    let first = app.login("alice").await;
    let again = app.login("alice").await;
    assert_eq!(first.id, again.id, "the second login finds the same member");
    assert_eq!(first.member_no.len(), 8);
    let me = first.gql(ME, json!({})).await;
    assert_eq!(me.data()["me"]["id"], first.id.as_str());
    assert_eq!(
        me.data()["me"]["nickname"],
        format!("会员{}", first.member_no)
    );
    let bob = app.login("bob").await;
    assert_ne!(bob.id, first.id);
    assert_ne!(bob.member_no, first.member_no);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_answer_never_carries_the_session_key() {
    let app = spawn_app().await;
    let answer = app
        .gql(None, "mutation { login(code: \"carol\") { accessToken refreshToken expiresAt member { id } } }", json!({}))
        .await;
    assert!(
        !answer
            .body
            .to_string()
            .to_lowercase()
            .contains("session_key")
    );
    assert!(answer.data()["login"]["expiresAt"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    app.gql(None, ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some("not-a-jwt"), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_and_admin_tokens_do_not_cross_endpoints() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let admin = app.admin(api::auth::AdminRole::Superadmin).await;
    app.admin_gql(Some(&member.token), "{ adminMe { id } }", json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(Some(&admin.token), ME, json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_expired_and_foreign_audience_tokens_are_refused() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64| json!({ "sub": member.id, "iss": "loyalty", "aud": aud, "exp": exp, "iat": now, "typ": "member" });
    // Control: a token we sign the same way with the right claims works.
    let good = sign(claims("loyalty-member", now + 600), TEST_JWT_SECRET);
    app.gql(Some(&good), ME, json!({})).await.data();

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims("loyalty-member", now + 600).to_string())
    );
    let expired = sign(claims("loyalty-member", now - 10), TEST_JWT_SECRET);
    let other_audience = sign(claims("another-app", now + 600), TEST_JWT_SECRET);
    let other_secret = sign(
        claims("loyalty-member", now + 600),
        "some-other-secret-some-other-secret",
    );
    for token in [alg_none, expired, other_audience, other_secret] {
        app.gql(Some(&token), ME, json!({}))
            .await
            .expect_error("UNAUTHENTICATED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_expires_on_the_request_clock() {
    let app = spawn_app().await;
    app.at("2030-01-01T00:00:00Z");
    let member = app.login("alice").await;
    app.at("2030-01-01T01:59:59Z");
    member.gql(ME, json!({})).await.data();
    app.at("2030-01-01T02:00:00Z");
    let refused = member.gql(ME, json!({})).await;
    assert!(
        refused.expect_error("UNAUTHENTICATED")["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_token_and_the_old_one_stops_working() {
    let app = spawn_app().await;
    app.at("2030-01-01T00:00:00Z");
    let member = app.login("alice").await;
    let rotated = app
        .gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await;
    let new_refresh = rotated.data()["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let new_access = rotated.data()["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_refresh, member.refresh_token);
    assert_eq!(
        rotated.data()["refreshSession"]["member"]["id"],
        member.id.as_str()
    );
    app.gql(Some(&new_access), ME, json!({})).await.data();

    // Replaying the spent token after the grace window (30 s) fails, and revokes its whole
    // family, the new token included. (Within the window, see auth_hardening item 10.)
    app.at("2030-01-01T00:01:00Z");
    app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(None, REFRESH, json!({ "t": new_refresh }))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    app.at("2030-01-01T00:00:00Z");
    let member = app.login("alice").await;
    app.at("2030-02-01T00:00:00Z");
    app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    app.gql(None, REFRESH, json!({ "t": "made-up" }))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let member = app.login("alice").await;
    let other_device = app.login("alice").await;
    assert_eq!(
        member.gql("mutation { logout }", json!({})).await.data()["logout"],
        true
    );
    app.gql(None, REFRESH, json!({ "t": member.refresh_token }))
        .await
        .expect_error("UNAUTHENTICATED");
    // Another sign-in of the same member is a session of its own.
    app.gql(None, REFRESH, json!({ "t": other_device.refresh_token }))
        .await
        .data();
    app.gql(None, "mutation { logout }", json!({}))
        .await
        .expect_error("UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_code_links_a_new_member_to_the_inviter_only_at_first_login() {
    use entity::member;
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    let bob = app
        .login_invited("bob", Some(&alice.invite_code.to_lowercase()))
        .await;
    let carol = app.login("carol").await;
    let carol_again = app.login_invited("carol", Some(&alice.invite_code)).await;
    let dave = app.login_invited("dave", Some("NOSUCH")).await;
    let invited_by = |id: &str| {
        let id: i64 = id.parse().unwrap();
        let db = app.state.db.clone();
        async move {
            member::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .invited_by
        }
    };
    let alice_id: i64 = alice.id.parse().unwrap();
    assert_eq!(invited_by(&bob.id).await, Some(alice_id));
    assert_eq!(carol.id, carol_again.id);
    assert_eq!(
        invited_by(&carol.id).await,
        None,
        "an existing member is never re-attributed"
    );
    assert_eq!(
        invited_by(&dave.id).await,
        None,
        "an unknown code is ignored, not an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_per_address() {
    let app = loyalty_tests::spawn_app_with(|env| {
        env.insert("LIMIT_LOGIN_IP".into(), "3/60s".into());
    })
    .await;
    app.at("2030-01-01T00:00:10Z");
    let login = "mutation { login(code: \"alice\") { accessToken } }";
    for _ in 0..3 {
        app.gql(None, login, json!({})).await.data();
    }
    let refused = app.gql(None, login, json!({})).await;
    let retry = refused.expect_error("RATE_LIMITED")["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The next window lets logins through again.
    app.at("2030-01-01T00:01:10Z");
    app.gql(None, login, json!({})).await.data();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_code_of_the_wrong_shape_is_a_validation_error() {
    let app = spawn_app().await;
    let answer = app
        .gql(
            None,
            "mutation { login(code: \"a b\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer.expect_error("VALIDATION")["extensions"]["field"],
        "code"
    );
}
