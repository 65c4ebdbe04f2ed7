//! The owner's web UI: a few server-rendered page shells with small
//! vanilla-JS modules that call the owner JSON API (so every change is
//! checked, audited and reaches MQTT exactly as from the CLI or HA).
//! Everything is built into the binary; nothing is fetched from elsewhere.
//!
//! Pages: `/` cameras and discoveries, `/cameras/{camera}` timeline,
//! `/sharing`, `/requests`, `/audit`, `/health`. Assets: `/ui/assets/*`.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::error_response;

/// One page: its path in the navigation, title, body and script.
struct Page {
    nav: Option<&'static str>,
    title: &'static str,
    body: &'static str,
    script: &'static str,
}

const CAMERAS: Page = Page {
    nav: Some("/"),
    title: "Cameras",
    body: include_str!("pages/cameras.html"),
    script: "cameras.js",
};
const TIMELINE: Page = Page {
    nav: None,
    title: "Timeline",
    body: include_str!("pages/timeline.html"),
    script: "timeline.js",
};
const SHARING: Page = Page {
    nav: Some("/sharing"),
    title: "Police sharing",
    body: include_str!("pages/sharing.html"),
    script: "sharing.js",
};
const REQUESTS: Page = Page {
    nav: Some("/requests"),
    title: "Requests",
    body: include_str!("pages/requests.html"),
    script: "requests.js",
};
const AUDIT: Page = Page {
    nav: Some("/audit"),
    title: "Audit log",
    body: include_str!("pages/audit.html"),
    script: "audit.js",
};
const HEALTH: Page = Page {
    nav: Some("/health"),
    title: "Health",
    body: include_str!("pages/health.html"),
    script: "health.js",
};

const NAV: [(&str, &str); 5] = [
    ("/", "Cameras"),
    ("/sharing", "Sharing"),
    ("/requests", "Requests"),
    ("/audit", "Audit"),
    ("/health", "Health"),
];

pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { render(&CAMERAS, "") }))
        .route("/cameras/{camera}", get(timeline))
        .route("/sharing", get(|| async { render(&SHARING, "") }))
        .route("/requests", get(|| async { render(&REQUESTS, "") }))
        .route("/audit", get(|| async { render(&AUDIT, "") }))
        .route("/health", get(|| async { render(&HEALTH, "") }))
        .route("/ui/assets/{file}", get(asset))
}

/// Escapes text for HTML content and attribute values (`& < > " '`).
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The shared shell: navigation, the open-mode banner, the page body and
/// its script. `camera` fills `{{camera}}` in the body (escaped).
fn render(page: &Page, camera: &str) -> Response {
    let nav: String = NAV
        .iter()
        .map(|(href, label)| {
            let current = if page.nav == Some(*href) {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
        })
        .collect();
    let title = if camera.is_empty() {
        page.title.to_string()
    } else {
        format!("{} · {}", escape(camera), page.title)
    };
    let body = page.body.replace("{{camera}}", &escape(camera));
    let html = format!(
        include_str!("pages/shell.html"),
        title = title,
        nav = nav,
        body = body,
        script = page.script,
    );
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
                 connect-src 'self'; style-src 'self'; script-src 'self'; \
                 object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

async fn timeline(Path(camera): Path<String>) -> Response {
    if camera.is_empty() || camera.len() > 200 {
        return error_response(StatusCode::NOT_FOUND, "no such camera page".into());
    }
    render(&TIMELINE, &camera)
}

/// The embedded assets: (name, content type, contents).
const ASSETS: [(&str, &str, &str); 10] = [
    ("style.css", "text/css", include_str!("assets/style.css")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("live-player.js", JS, include_str!("assets/live-player.js")),
    ("cameras.js", JS, include_str!("assets/cameras.js")),
    ("timeline.js", JS, include_str!("assets/timeline.js")),
    ("sharing.js", JS, include_str!("assets/sharing.js")),
    ("requests.js", JS, include_str!("assets/requests.js")),
    ("audit.js", JS, include_str!("assets/audit.js")),
    ("health.js", JS, include_str!("assets/health.js")),
    ("live-page.js", JS, include_str!("assets/live-page.js")),
];
const JS: &str = "text/javascript";

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (
                    header::CONTENT_TYPE,
                    format!("{content_type}; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, "no-cache".to_string()),
            ],
            *body,
        )
            .into_response(),
        None => error_response(
            StatusCode::NOT_FOUND,
            format!("no asset `{}`", file.chars().take(64).collect::<String>()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_are_escaped_in_pages() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;"
        );
        // What a page really carries, not only the helper.
        let response = render(&TIMELINE, "<script>\"'");
        let html = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .expect("page body");
        let html = String::from_utf8_lossy(&html);
        assert!(!html.contains("<script>\"'"), "{html}");
        assert!(html.contains("&lt;script&gt;&quot;&apos;"), "{html}");
    }
}
