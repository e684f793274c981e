//! The GraphQL playground: GraphiQL built from `playground/` (npm, Vite) into
//! `playground/dist/`, committed and embedded, served at `/graphql` and `/admin/graphql` for
//! browsers and its assets under `/playground/`. Off in production unless `GRAPHIQL=true`.

use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;
use serde_json::json;

use crate::config::Settings;
use crate::state::AppState;
use crate::web_assets;

/// The path the build's assets are served under (Vite's `base` in playground/vite.config.js).
pub const PREFIX: &str = "/playground";

#[derive(RustEmbed)]
#[folder = "../playground/dist"]
struct Dist;

/// Which endpoint a page talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Member,
    Admin,
}

/// What the page at `url` is told about where it is; see playground/src/config.js.
pub fn page_config(endpoint: Endpoint, url: &str, settings: &Settings) -> serde_json::Value {
    let (name, title) = match endpoint {
        Endpoint::Member => ("member", "Loyalty · member API"),
        Endpoint::Admin => ("admin", "Loyalty · admin API"),
    };
    // The mock login only exists outside production and without a real WeChat app.
    let sign_in_as = endpoint == Endpoint::Member
        && !settings.env.is_production()
        && settings.wechat.appid.is_none();
    json!({ "endpoint": name, "url": url, "title": title, "signInAs": sign_in_as })
}

/// The playground page for `endpoint`, served at `url`.
pub fn page(endpoint: Endpoint, url: &str, settings: &Settings) -> HttpResponse {
    web_assets::page::<Dist>("index.html", &page_config(endpoint, url, settings))
}

/// `GET /playground/{path}`: the build's scripts, styles, workers and fonts. The page itself is
/// only served at the endpoints, which fill in its settings.
pub async fn asset(
    req: HttpRequest,
    path: web::Path<String>,
    app: web::Data<AppState>,
) -> HttpResponse {
    let path = path.into_inner();
    if !app.settings.graphiql || path.ends_with(".html") {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    }
    web_assets::asset::<Dist>(&req, &path)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_map(&map).expect("valid settings")
    }

    #[test]
    fn the_member_page_offers_sign_in_as_while_the_mock_login_is_on() {
        let development = settings(&[]);
        let member = page_config(Endpoint::Member, "/graphql", &development);
        assert_eq!(member["endpoint"], "member");
        assert_eq!(member["url"], "/graphql");
        assert_eq!(member["signInAs"], true);
        let admin = page_config(Endpoint::Admin, "/admin/graphql", &development);
        assert_eq!(admin["endpoint"], "admin");
        assert_eq!(admin["signInAs"], false, "admins have no mock login");
    }

    #[test]
    fn there_is_no_sign_in_as_with_a_real_wechat_app_or_in_production() {
        let wechat = settings(&[("WECHAT_APPID", "wx1"), ("WECHAT_SECRET", "s")]);
        assert_eq!(
            page_config(Endpoint::Member, "/graphql", &wechat)["signInAs"],
            false
        );
        let mut production = settings(&[]);
        production.env = crate::config::AppEnv::Production;
        assert_eq!(
            page_config(Endpoint::Member, "/graphql", &production)["signInAs"],
            false
        );
    }
}
