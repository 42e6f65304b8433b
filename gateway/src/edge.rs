//! What browsers may do: which other origins' pages may call the gateway (CORS), and keeping
//! another site's page from spending a signed-in user's cookie (CSRF).
//!
//! Without `cors.allow_origins` no CORS header is ever sent, so only pages the gateway serves
//! itself (GraphiQL) can read its answers. CSRF: a browser sends a cross-site request without
//! asking first (a preflight) only when it is "simple" — no headers beyond the basic ones and a
//! `Content-Type` of a form or plain text. POSTs of such types are refused with 415 anyway and
//! mutations never run over GET, so what is left is a cross-site GET that rides on the session
//! cookie. Requests the check applies to must show they could not be simple: a `Content-Type`
//! other than those three, or one of `required_headers`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Cross-origin calls from browsers.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins whose pages may call the gateway (`https://shop.example.com`), or `["*"]` for
    /// any. Empty (the default): none but the gateway's own.
    pub allow_origins: Vec<String>,
    /// Let those pages send cookies and read the answers made with them. Never with `*`.
    pub allow_credentials: bool,
    /// How long a browser may reuse a preflight's answer.
    pub max_age_seconds: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            allow_origins: Vec::new(),
            allow_credentials: false,
            max_age_seconds: 600,
        }
    }
}

/// Which requests must show they were preflighted.
#[derive(Clone, Copy, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CsrfCheck {
    /// Those carrying the sign-in cookie (`authentication.cookie`): the one credential a
    /// browser adds on its own.
    #[default]
    Cookies,
    /// Every request, signed in or not.
    All,
    /// None: lets any site's page run queries with a signed-in user's cookie.
    UnsafeNone,
}

/// Cross-site request forgery prevention.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CsrfSettings {
    pub check: CsrfCheck,
    /// Headers any one of which marks a request as preflighted.
    pub required_headers: Vec<String>,
}

impl Default for CsrfSettings {
    fn default() -> Self {
        Self {
            check: CsrfCheck::Cookies,
            required_headers: vec![
                "x-polygraph-preflight".to_owned(),
                "apollo-require-preflight".to_owned(),
            ],
        }
    }
}

/// Headers a browser page may send besides the simple ones.
const REQUEST_HEADERS: [&str; 5] = [
    "authorization",
    "content-type",
    "x-polygraph-explain",
    "x-polygraph-preflight",
    "apollo-require-preflight",
];

impl CorsSettings {
    /// Refuses settings a browser would reject or that would leak: credentials with any origin,
    /// origins that are not `scheme://host[:port]`.
    pub fn check(&self) -> Result<(), String> {
        let any = self.allow_origins.iter().any(|origin| origin == "*");
        if any && self.allow_credentials {
            return Err(
                "cors: allow_credentials needs the origins listed; with \"*\" any site could read a signed-in user's answers"
                    .to_owned(),
            );
        }
        if any && self.allow_origins.len() > 1 {
            return Err("cors: \"*\" allows every origin; list no others beside it".to_owned());
        }
        for origin in self.allow_origins.iter().filter(|origin| *origin != "*") {
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin.split("://").nth(1).is_some_and(|rest| {
                    !rest.is_empty() && !rest.contains('/') && !rest.contains('*')
                })
                && HeaderValue::from_str(origin).is_ok();
            if !valid {
                return Err(format!(
                    "cors: {origin:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
        }
        Ok(())
    }

    /// The layer that answers preflights and marks answers readable by the allowed origins,
    /// letting their pages send the CSRF headers `csrf` asks for; `None` when no origin is
    /// allowed. `check` must have passed.
    pub fn layer(&self, csrf: &CsrfSettings) -> Option<CorsLayer> {
        if self.allow_origins.is_empty() {
            return None;
        }
        let origins = if self.allow_origins.iter().any(|origin| origin == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                self.allow_origins
                    .iter()
                    .filter_map(|origin| HeaderValue::from_str(origin).ok()),
            )
        };
        Some(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(
                    REQUEST_HEADERS
                        .into_iter()
                        .map(HeaderName::from_static)
                        .chain(
                            csrf.required_headers
                                .iter()
                                .filter_map(|name| HeaderName::try_from(name.as_str()).ok()),
                        )
                        .collect::<Vec<_>>(),
                )
                .allow_credentials(self.allow_credentials)
                .max_age(Duration::from_secs(self.max_age_seconds)),
        )
    }
}

impl CsrfSettings {
    /// Whether the request must be refused: the check applies to it and nothing shows it was
    /// preflighted. `cookie` is the sign-in cookie's name, if one is configured.
    pub fn refuses(&self, headers: &HeaderMap, cookie: Option<&str>) -> bool {
        let applies = match self.check {
            CsrfCheck::All => true,
            CsrfCheck::Cookies => {
                cookie.is_some_and(|name| crate::auth::cookie_value(headers, name).is_some())
            }
            CsrfCheck::UnsafeNone => false,
        };
        applies && !self.preflighted(headers)
    }

    fn preflighted(&self, headers: &HeaderMap) -> bool {
        let not_simple = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let media = value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                !matches!(
                    media.as_str(),
                    "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
                )
            });
        // `Authorization` is not a header a browser sends unasked either.
        not_simple
            || headers.contains_key(header::AUTHORIZATION)
            || self
                .required_headers
                .iter()
                .any(|name| headers.contains_key(name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn only_requests_that_could_be_simple_are_refused() {
        let csrf = CsrfSettings::default();
        let cookie = Some("session");
        let with_cookie = |extra: &[(&'static str, &'static str)]| {
            let mut all = vec![("cookie", "theme=dark; session=abc")];
            all.extend_from_slice(extra);
            headers(&all)
        };
        assert!(csrf.refuses(&with_cookie(&[]), cookie));
        assert!(csrf.refuses(&with_cookie(&[("content-type", "text/plain")]), cookie));
        assert!(csrf.refuses(
            &with_cookie(&[("content-type", "multipart/form-data; boundary=x")]),
            cookie
        ));
        assert!(!csrf.refuses(
            &with_cookie(&[("content-type", "application/json")]),
            cookie
        ));
        assert!(!csrf.refuses(&with_cookie(&[("x-polygraph-preflight", "1")]), cookie));
        assert!(!csrf.refuses(&with_cookie(&[("apollo-require-preflight", "1")]), cookie));
        assert!(!csrf.refuses(&with_cookie(&[("authorization", "Bearer x")]), cookie));
        // No sign-in cookie, or another cookie only: nothing for a forger to spend.
        assert!(!csrf.refuses(&headers(&[("cookie", "theme=dark")]), cookie));
        assert!(!csrf.refuses(&with_cookie(&[]), None));
        // Stricter and looser settings.
        let all = CsrfSettings {
            check: CsrfCheck::All,
            ..CsrfSettings::default()
        };
        assert!(all.refuses(&headers(&[]), None));
        assert!(!all.refuses(&headers(&[("content-type", "application/json")]), None));
        let none = CsrfSettings {
            check: CsrfCheck::UnsafeNone,
            ..CsrfSettings::default()
        };
        assert!(!none.refuses(&with_cookie(&[]), cookie));
    }

    #[test]
    fn cors_settings_that_would_leak_are_refused() {
        let cors = |origins: &[&str], credentials: bool| CorsSettings {
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allow_credentials: credentials,
            ..CorsSettings::default()
        };
        assert!(cors(&[], false).check().is_ok());
        assert!(cors(&[], false).layer(&CsrfSettings::default()).is_none());
        assert!(cors(&["*"], false).check().is_ok());
        assert!(cors(&["*"], true).check().is_err());
        assert!(cors(&["*", "https://a.example"], false).check().is_err());
        assert!(
            cors(&["https://a.example", "http://localhost:3000"], true)
                .check()
                .is_ok()
        );
        for bad in [
            "a.example",
            "https://a.example/",
            "https://a.example/app",
            "https://*.example",
            "https://",
        ] {
            assert!(cors(&[bad], false).check().is_err(), "{bad}");
        }
    }
}
