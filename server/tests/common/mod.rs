//! The one harness of the server tests: a fresh store per test, SQLite by
//! default, PostgreSQL when `WARD_TEST_POSTGRES_URL` names a server (a URL
//! of a role that may create databases: each test gets its own
//! `ward_test_<random>` database, dropped afterwards), and the API over it
//! in-process (tower `oneshot`).

#![allow(dead_code)]

use axum::Router;
use sqlx::AnyPool;
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::store::Store;

/// The admin API token every harness has.
pub const ADMIN: &str = "ward_test_admin_token";
/// The viewer API token every harness has.
pub const VIEWER: &str = "ward_test_viewer_token";
/// The variable naming the PostgreSQL server to test against.
pub const POSTGRES_ENV: &str = "WARD_TEST_POSTGRES_URL";

/// A fresh, migrated database for one test, removed when dropped.
pub struct TestDb {
    /// Its URL (`sqlite:...` or `postgres://...`).
    pub url: String,
    /// The store over it.
    pub store: Store,
    _dir: tempfile::TempDir,
    postgres: Option<PostgresDb>,
}

/// A database made on the test server, dropped with the test.
struct PostgresDb {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        // Drop runs outside async: a small runtime of its own, on a thread
        // (the test's runtime may be the current thread).
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let mut tries = 0;
                    loop {
                        let done = match connect(&url).await {
                            Ok(pool) => {
                                let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                                    .execute(&pool)
                                    .await;
                                pool.close().await;
                                done.map(|_| ())
                            }
                            Err(e) => Err(e),
                        };
                        tries += 1;
                        if done.is_ok() || tries == 3 {
                            return done;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    }
                })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: could not drop test database {}", self.name),
        }
    }
}

/// A pool of one connection to `url` (a database the test reads or writes beside the store).
pub async fn connect(url: &str) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
}

/// `url` with its path (the database name) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Whether the tests run against PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())
}

impl TestDb {
    /// A fresh database: PostgreSQL when [`POSTGRES_ENV`] is set, else a
    /// SQLite file in a temporary directory.
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match postgres_url() {
            None => {
                let url = format!("sqlite:{}", dir.path().join("ward.db").display());
                let store = Store::open_url(&url).await.unwrap();
                TestDb {
                    url,
                    store,
                    _dir: dir,
                    postgres: None,
                }
            }
            Some(admin_url) => {
                let name = format!("ward_test_{}", hex::encode(rand::random::<[u8; 8]>()));
                let admin = connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect: {e}"));
                let sql = format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let postgres = Some(PostgresDb {
                    admin_url: admin_url.clone(),
                    name: name.clone(),
                });
                let url = with_database(&admin_url, &name);
                let store = Store::open_url(&url).await.unwrap();
                TestDb {
                    url,
                    store,
                    _dir: dir,
                    postgres,
                }
            }
        }
    }

    /// A second connection to the database, for SQL the store does not
    /// offer (tampering, back-dating).
    pub async fn raw(&self) -> AnyPool {
        connect(&self.url).await.unwrap()
    }

    /// A temporary directory of this test.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// An agent of agency `ops` on `host`, enrolled straight into `store`.
pub async fn store_agent(store: &Store, host: &str) -> ward_server::store::AgentPrincipal {
    let secret = format!("secret-{host}");
    store
        .add_enroll_token(
            &secret,
            "ops",
            1,
            chrono::Utc::now() + chrono::Duration::hours(1),
            "admin",
            None,
        )
        .await
        .unwrap();
    let id = format!("agent-{host}");
    let agency = store
        .enroll_agent(&secret, &id, host, "0.1.0", &format!("cred-{host}"))
        .await
        .unwrap()
        .expect("enrolled");
    ward_server::store::AgentPrincipal { id, agency }
}

/// The API over a fresh store with an admin and a viewer token.
pub struct Harness {
    /// The application.
    pub app: Router,
    /// Its store.
    pub store: Store,
    /// The admin token ([`ADMIN`]).
    pub admin: String,
    /// The database (kept for as long as the harness lives).
    pub db: TestDb,
}

/// A harness with the plain [`AppState`] defaults.
pub async fn harness() -> Harness {
    harness_with(|s| s).await
}

/// A harness whose state `adjust` changes (limits, pin, ...).
pub async fn harness_with(adjust: impl FnOnce(AppState) -> AppState) -> Harness {
    let db = TestDb::new().await;
    let store = db.store.clone();
    for (name, token) in [("admin", ADMIN), ("viewer", VIEWER)] {
        store
            .add_api_token(name, name, &hash_secret(token))
            .await
            .unwrap();
    }
    let app = router(adjust(AppState::new(store.clone(), "http://127.0.0.1:9")));
    Harness {
        app,
        store,
        admin: ADMIN.to_string(),
        db,
    }
}

impl Harness {
    /// `method path` through the router, with `token` as the bearer
    /// credential (none when `None`) and `body` as JSON; the status, headers
    /// and body bytes of the answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let body = body.map(|b| b.to_string().into_bytes());
        self.request_bytes(method, path, token, body, &[]).await
    }

    /// [`Harness::request`] with any body bytes (sent as JSON) and extra
    /// headers (`Content-Encoding`, ...).
    pub async fn request_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
        use axum::http::{Request, header};
        use tower::ServiceExt as _;
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let body = body.map_or_else(axum::body::Body::empty, axum::body::Body::from);
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    /// [`Harness::request_bytes`] answered as JSON (`Null` when the answer
    /// is not JSON).
    pub async fn answer(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (axum::http::StatusCode, serde_json::Value) {
        let (status, _, bytes) = self.request_bytes(method, path, token, body, &[]).await;
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// `method path` with a JSON `body`, answered as JSON.
    pub async fn answer_json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> (axum::http::StatusCode, serde_json::Value) {
        self.answer(method, path, token, Some(body.to_string().into_bytes()))
            .await
    }

    /// Enrolls an agent on `host` of agency `Sở TT&TT`; its bearer credential.
    pub async fn enroll_agent(&self, host: &str) -> String {
        self.enroll_agent_with(host, serde_json::json!({"agency": "Sở TT&TT"}))
            .await
    }

    /// Enrolls an agent on `host` with a fresh enrollment token made from
    /// `token_request` (e.g. `{"agency": ...}`); returns its credential.
    pub async fn enroll_agent_with(&self, host: &str, token_request: serde_json::Value) -> String {
        let (s, _, t) = self
            .request(
                "POST",
                "/api/v1/enroll-tokens",
                Some(ADMIN),
                Some(&token_request),
            )
            .await;
        let t: serde_json::Value = serde_json::from_slice(&t).unwrap_or_default();
        assert_eq!(s, axum::http::StatusCode::OK, "{t}");
        let token = ward_agent::wire::EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
        let enroll =
            serde_json::json!({"secret": token.secret, "hostname": host, "version": "0.1.0"});
        let (s, _, v) = self
            .request("POST", "/api/v1/agents/enroll", None, Some(&enroll))
            .await;
        let v: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
        assert_eq!(s, axum::http::StatusCode::OK, "{v}");
        v["agent_token"].as_str().unwrap().to_string()
    }
}
