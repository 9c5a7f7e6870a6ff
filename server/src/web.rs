//! The responders' web UI: static files embedded in the binary
//! (`server/web/`), served at `/` and `/ui/...` with their content types,
//! revalidated caching (ETag) and a strict Content-Security-Policy. The
//! page is plain JavaScript talking to the API with a session token.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, AppState};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// No inline script or style, nothing from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The UI's routes (merged at the top of the API router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                asset(&path, &headers)
            }),
        )
}

/// The media type of a file by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// One embedded file, or 404; 304 when the client's copy is current.
fn asset(path: &str, headers: &HeaderMap) -> Response {
    if path.split('/').any(|p| p.is_empty() || p == "..") {
        return ApiError::NotFound(format!("no UI file '{path}'")).into_response();
    }
    let Some(file) = WEB.get_file(path) else {
        return ApiError::NotFound(format!("no UI file '{path}'")).into_response();
    };
    let body = file.contents();
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    // Revalidate every time: a new coordinator version serves new files at
    // the same names.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(lang: &str) -> BTreeSet<String> {
        let file = WEB
            .get_file(format!("i18n/{lang}.json"))
            .unwrap_or_else(|| panic!("i18n/{lang}.json is missing"));
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(file.contents()).expect("a flat JSON object");
        for (k, v) in &map {
            assert!(
                v.as_str().is_some_and(|s| !s.trim().is_empty()),
                "{lang}.json: '{k}' is not a non-empty string"
            );
        }
        map.keys().cloned().collect()
    }

    /// Keys the page uses: `tr("key"` in scripts (not part of a longer
    /// name), `data-i18n="key"` and `data-i18n-title="key"` in the HTML.
    fn used_keys() -> BTreeSet<String> {
        let mut used = BTreeSet::new();
        for file in WEB.files() {
            let Some(text) = file.contents_utf8() else {
                continue;
            };
            for marker in ["tr(\"", "data-i18n=\"", "data-i18n-title=\""] {
                for (at, _) in text.match_indices(marker) {
                    let before = text[..at].chars().next_back();
                    if before
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
                    {
                        continue;
                    }
                    let rest = &text[at + marker.len()..];
                    let key = &rest[..rest.find('"').unwrap_or(0)];
                    if !key.is_empty() {
                        used.insert(key.to_string());
                    }
                }
            }
        }
        used
    }

    #[test]
    fn both_languages_have_the_same_keys_and_every_used_key() {
        let vi = keys("vi");
        let en = keys("en");
        let only_vi: Vec<_> = vi.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&vi).collect();
        assert!(
            only_vi.is_empty() && only_en.is_empty(),
            "only in vi: {only_vi:?}; only in en: {only_en:?}"
        );
        let used = used_keys();
        assert!(
            used.len() > 50,
            "the scanner found only {} keys",
            used.len()
        );
        let missing: Vec<_> = used.difference(&vi).collect();
        assert!(missing.is_empty(), "used but not translated: {missing:?}");
    }

    #[test]
    fn files_are_served_with_types_and_a_strict_policy() {
        let r = asset("index.html", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self';")
        );
        let etag = r.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(asset("index.html", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            asset("app.js", &HeaderMap::new()).headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            asset("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            asset("nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn no_inline_script_or_style() {
        let html = WEB.get_file("index.html").unwrap().contents_utf8().unwrap();
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("style="), "inline style");
        for handler in [
            "onclick=",
            "onload=",
            "onsubmit=",
            "onchange=",
            "oninput=",
            "onerror=",
        ] {
            assert!(!html.contains(handler), "inline event handler {handler}");
        }
    }
}
