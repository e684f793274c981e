//! `updateProfile`: each field validated, with the field named in the error.

use loyalty_tests::spawn_app;
use serde_json::json;

const UPDATE: &str = "mutation($input: ProfileInput!) { updateProfile(input: $input) { nickname avatarUrl birthday } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_edits_nickname_avatar_and_birthday() {
    let app = spawn_app().await;
    app.at("2026-11-24T10:00:00+08:00");
    let alice = app.login("alice").await;
    let answer = alice
        .gql(UPDATE, json!({ "input": { "nickname": " 小爱 ", "avatarUrl": "https://cdn.example.com/a.png", "birthday": "1990-02-28" } }))
        .await;
    assert_eq!(
        answer.data()["updateProfile"],
        json!({ "nickname": "小爱", "avatarUrl": "https://cdn.example.com/a.png", "birthday": "1990-02-28" })
    );
    // Fields left out stay; an explicit null removes the avatar.
    let cleared = alice
        .gql(UPDATE, json!({ "input": { "avatarUrl": null } }))
        .await;
    assert_eq!(
        cleared.data()["updateProfile"],
        json!({ "nickname": "小爱", "avatarUrl": null, "birthday": "1990-02-28" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profile_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    app.at("2026-11-24T10:00:00+08:00");
    let alice = app.login("alice").await;
    let cases = [
        (json!({ "nickname": "" }), "nickname"),
        (json!({ "nickname": "名".repeat(33) }), "nickname"),
        (
            json!({ "nickname": "ok", "avatarUrl": "javascript:alert(1)" }),
            "avatarUrl",
        ),
        (
            json!({ "avatarUrl": format!("https://x.cn/{}", "a".repeat(520)) }),
            "avatarUrl",
        ),
        (
            json!({ "nickname": "ok", "birthday": "2026-11-24" }),
            "birthday",
        ),
        (json!({ "birthday": "2031-01-01" }), "birthday"),
    ];
    for (input, field) in cases {
        let answer = alice.gql(UPDATE, json!({ "input": input })).await;
        assert_eq!(
            answer.expect_error("VALIDATION")["extensions"]["field"],
            field,
            "{input}"
        );
    }
    let me = alice
        .gql("{ me { nickname avatarUrl birthday } }", json!({}))
        .await;
    assert_eq!(
        me.data()["me"]["nickname"],
        format!("会员{}", alice.member_no)
    );
    assert_eq!(me.data()["me"]["birthday"], serde_json::Value::Null);
    // A date that is not a date is a validation error too.
    alice
        .gql(UPDATE, json!({ "input": { "birthday": "1990-02-30" } }))
        .await
        .expect_error("VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_birthday_can_be_set_only_once() {
    let app = spawn_app().await;
    let alice = app.login("alice").await;
    alice
        .gql(UPDATE, json!({ "input": { "birthday": "1990-05-01" } }))
        .await
        .data();
    // Sending the same day again is fine; another day is not.
    alice
        .gql(UPDATE, json!({ "input": { "birthday": "1990-05-01" } }))
        .await
        .data();
    let answer = alice
        .gql(UPDATE, json!({ "input": { "birthday": "1991-05-01" } }))
        .await;
    assert_eq!(
        answer.expect_error("VALIDATION")["extensions"]["field"],
        "birthday"
    );
}
