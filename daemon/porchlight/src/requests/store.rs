//! `requests.db`: requests, their cameras and download tokens, in a SQLite
//! file of their own beside the recording index (video retention never
//! touches it) and the audit log (which has a single writer; this file may
//! be written by the daemon and the owner's CLI at once).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};

use super::{outcome, RequestState, RequestStoreError, StoredCamera, StoredRequest, TokenError};
use crate::policy::{self, Decision, GeoPoint, Outcome, Refusal, TimeWindow, ValidatedRequest};
use crate::time::format_utc_us;

/// STRICT tables: a value of the wrong type cannot be written, even by hand.
const V1: &str = "
CREATE TABLE requests (
    id TEXT PRIMARY KEY,                  -- req_ + 20 lowercase hex
    agency TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    officer TEXT NOT NULL,                -- JSON {name, badge}
    case_id TEXT NOT NULL,
    incident_type TEXT NOT NULL,
    legal_basis TEXT NOT NULL,            -- JSON, as policy::LegalBasis serializes
    reason TEXT NOT NULL,
    window_from_us INTEGER NOT NULL,
    window_to_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL,
    state TEXT NOT NULL,
    -- The policy's refusal of the whole request (privacy, limits), if any.
    whole_request_refusal TEXT,
    denial_reason TEXT,
    answered_us INTEGER
) STRICT;
CREATE INDEX requests_by_case ON requests (agency, case_id);
CREATE INDEX requests_by_agency_time ON requests (agency, received_us);
CREATE INDEX requests_by_state_expiry ON requests (state, expires_us);

CREATE TABLE request_cameras (
    request_id TEXT NOT NULL REFERENCES requests (id),
    position INTEGER NOT NULL,            -- order of the decision
    camera TEXT NOT NULL,
    outcome TEXT NOT NULL,                -- see requests::outcome
    window_from_us INTEGER,               -- servable or proposed window
    window_to_us INTEGER,
    approvable_from_us INTEGER,           -- the most the owner may approve
    approvable_to_us INTEGER,
    audio INTEGER NOT NULL,
    refusal TEXT,
    visible_to_agency INTEGER NOT NULL,
    PRIMARY KEY (request_id, camera)
) STRICT;

-- Only a SHA-256 of each token: a copy of this file hands out nothing.
CREATE TABLE tokens (
    token_sha256 TEXT PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    camera TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    window_from_us INTEGER NOT NULL,
    window_to_us INTEGER NOT NULL,
    audio INTEGER NOT NULL,
    issued_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL,
    revoked_us INTEGER
) STRICT;
CREATE INDEX tokens_by_request ON tokens (request_id);
";

/// Schema 2: where the incident was (distance per camera for the owner),
/// and what was delivered and downloaded, so the owner's history is one
/// query instead of a walk through the audit log. Rows from schema 1 keep
/// NULL in the new columns.
const V2: &str = "
ALTER TABLE requests ADD COLUMN incident_lat REAL;
ALTER TABLE requests ADD COLUMN incident_lon REAL;
ALTER TABLE requests ADD COLUMN radius_m REAL;
ALTER TABLE request_cameras ADD COLUMN distance_m INTEGER;  -- rounded metres

-- The evidence package made for a servable camera (made again only if the
-- first was lost; the row then holds the newest).
CREATE TABLE deliveries (
    request_id TEXT NOT NULL REFERENCES requests (id),
    camera TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,                 -- of the whole package file
    built_us INTEGER NOT NULL,
    PRIMARY KEY (request_id, camera)
) STRICT;

-- Each download response: recorded as it starts, its byte count updated as
-- the body ends (or the agency hangs up).
CREATE TABLE downloads (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id),
    camera TEXT NOT NULL,
    agency TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    byte_range TEXT,                      -- the Range header, if any
    status INTEGER NOT NULL,              -- 200 or 206
    bytes_planned INTEGER NOT NULL,       -- Content-Length of the response
    bytes_sent INTEGER NOT NULL,
    finished_us INTEGER
) STRICT;
CREATE INDEX downloads_by_request ON downloads (request_id, started_us);
";

/// Schema 3: when a delivered package was deleted (its download link
/// expired, or the owner left the relay program), and each live share the
/// agency watched. Rows from schema 2 keep NULL in `removed_us`.
const V3: &str = "
ALTER TABLE deliveries ADD COLUMN removed_us INTEGER;  -- package file deleted

-- One row per live share watched: written with each audited minute (the
-- audit entry comes first), closed when a stream of it ends.
CREATE TABLE live_views (
    share_id TEXT PRIMARY KEY,            -- ls_ + 16 lowercase hex
    request_id TEXT NOT NULL REFERENCES requests (id),
    camera TEXT NOT NULL,
    agency TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    started_us INTEGER NOT NULL,          -- the first audited minute
    last_minute_us INTEGER NOT NULL,      -- the latest audited minute
    minutes INTEGER NOT NULL,             -- audited minutes of the share
    ended_us INTEGER,                     -- NULL while a stream runs
    end_reason TEXT                       -- live::EndReason code, or left
) STRICT;
CREATE INDEX live_views_by_request ON live_views (request_id, started_us);
";

const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The migrations, for the upgrade tests (`tests/data/requests-schema/`).
#[cfg(test)]
pub(super) const ALL_MIGRATIONS: &[&str] = MIGRATIONS;

/// Whole-request refusals that do not count toward the rate limits: a
/// request refused for a limit must not extend the limit (see
/// `policy::RequestHistory`).
const RATE_LIMIT_REFUSALS: &str = "('case_limit_reached', 'agency_daily_limit_reached')";

const DAY_US: i64 = 86_400_000_000;

/// What a valid download token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub request_id: String,
    pub camera: String,
    /// The window served when the token was issued.
    pub window: TimeWindow,
    pub audio: bool,
    pub expires_us: i64,
}

/// What [`RequestStore::revoke_all`] took back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevokedAll {
    /// The requests changed, as they now are, with the cameras changed in
    /// each: `(camera, outcome before)`.
    pub requests: Vec<(StoredRequest, Vec<(String, String)>)>,
    /// Servable cameras made `revoked`.
    pub grants: usize,
    /// Waiting cameras denied.
    pub pending: usize,
    /// Download tokens that were still live.
    pub tokens: usize,
}

/// The request database. Cheap to clone and safe to share; every method
/// blocks on SQLite (from async code, call it in `spawn_blocking` or use
/// [`super::RequestService`]).
#[derive(Clone)]
pub struct RequestStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

pub(super) fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> RequestStoreError {
    move |source| RequestStoreError::Database { context, source }
}

impl RequestStore {
    /// Opens (creating if needed) `<data_dir>/requests.db`.
    pub fn open(data_dir: &Path) -> Result<RequestStore, RequestStoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| RequestStoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = crate::store::paths::requests_db_path(data_dir);
        let open_error = |source| RequestStoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_error)?;
        configure(&conn).map_err(open_error)?;
        migrate(&conn).map_err(open_error)?;
        Ok(RequestStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn with_conn<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, RequestStoreError>,
    ) -> Result<T, RequestStoreError> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut conn)
    }

    /// Counts for `policy::RequestHistory`: earlier recorded requests of
    /// this agency and case, and this agency's requests in the 24 hours up
    /// to `now_us`. Requests refused for a rate limit are not counted.
    pub fn history(
        &self,
        agency: &str,
        case_id: &str,
        now_us: i64,
    ) -> Result<policy::RequestHistory, RequestStoreError> {
        self.with_conn(|conn| {
            let counted = format!(
                "(whole_request_refusal IS NULL OR whole_request_refusal NOT IN {RATE_LIMIT_REFUSALS})"
            );
            let (case, day): (i64, i64) = conn
                .query_row(
                    &format!(
                        "SELECT
                           (SELECT COUNT(*) FROM requests WHERE agency = ?1 AND case_id = ?2 AND {counted}),
                           (SELECT COUNT(*) FROM requests WHERE agency = ?1
                              AND received_us > ?3 AND received_us <= ?4 AND {counted})"
                    ),
                    params![agency, case_id, now_us.saturating_sub(DAY_US), now_us],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(db("counting earlier requests"))?;
            Ok(policy::RequestHistory {
                earlier_requests_for_case: u32::try_from(case).unwrap_or(u32::MAX),
                agency_requests_last_24h: u32::try_from(day).unwrap_or(u32::MAX),
            })
        })
    }

    /// Stores a validated request with its decision. Cameras the policy
    /// served are servable at once; waiting ones wait until the owner
    /// answers or `now_us + approval_expiry`, after which they count as
    /// denied.
    pub fn record(
        &self,
        request: &ValidatedRequest,
        decision: &Decision,
        now_us: i64,
        approval_expiry: Duration,
    ) -> Result<StoredRequest, RequestStoreError> {
        self.record_located(request, decision, &[], now_us, approval_expiry)
    }

    /// As [`RequestStore::record`], also keeping each camera's distance
    /// from the incident, from the cameras' locations in the policy that
    /// decided (`cameras`); cameras without a location get none.
    pub fn record_located(
        &self,
        request: &ValidatedRequest,
        decision: &Decision,
        cameras_now: &[policy::CameraPolicy],
        now_us: i64,
        approval_expiry: Duration,
    ) -> Result<StoredRequest, RequestStoreError> {
        let id = new_request_id();
        let expiry_us = i64::try_from(approval_expiry.as_micros()).unwrap_or(i64::MAX);
        let cameras: Vec<StoredCamera> = decision
            .cameras
            .iter()
            .map(|c| {
                let mut stored = camera_from_decision(c, request.window());
                stored.distance_m = cameras_now
                    .iter()
                    .find(|p| p.name == c.camera)
                    .and_then(|p| p.location)
                    .map(|at| rounded_metres(at.distance_m(request.location())));
                stored
            })
            .collect();
        let state = derive_state(&cameras);
        let denial_reason = match (state, decision.whole_request) {
            (_, Some(refusal)) => Some(refusal.code().to_string()),
            (RequestState::Denied, None) => Some("refused_by_policy".to_string()),
            _ => None,
        };
        let to_json = |value: Result<String, serde_json::Error>| {
            value.map_err(|e| RequestStoreError::Corrupt(format!("cannot encode request: {e}")))
        };
        let officer = to_json(serde_json::to_string(request.officer()))?;
        let legal_basis = to_json(serde_json::to_string(request.legal_basis()))?;
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            tx.execute(
                "INSERT INTO requests (id, agency, cert_fingerprint, officer, case_id, incident_type,
                   legal_basis, reason, window_from_us, window_to_us, received_us, expires_us, state,
                   whole_request_refusal, denial_reason, answered_us, incident_lat, incident_lon,
                   radius_m)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL,
                   ?16, ?17, ?18)",
                params![
                    id,
                    request.agency().name,
                    request.agency().cert_fingerprint,
                    officer,
                    request.case_id(),
                    request.incident_type(),
                    legal_basis,
                    request.reason(),
                    request.window().from_us,
                    request.window().to_us,
                    now_us,
                    now_us.saturating_add(expiry_us),
                    state.as_str(),
                    decision.whole_request.map(Refusal::code),
                    denial_reason,
                    request.location().lat,
                    request.location().lon,
                    request.radius_m(),
                ],
            )
            .map_err(db("recording the request"))?;
            for (position, camera) in cameras.iter().enumerate() {
                tx.execute(
                    "INSERT INTO request_cameras (request_id, position, camera, outcome,
                       window_from_us, window_to_us, approvable_from_us, approvable_to_us,
                       audio, refusal, visible_to_agency, distance_m)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        id,
                        position as i64,
                        camera.camera,
                        camera.outcome,
                        camera.window.map(|w| w.from_us),
                        camera.window.map(|w| w.to_us),
                        camera.approvable_window.map(|w| w.from_us),
                        camera.approvable_window.map(|w| w.to_us),
                        camera.audio,
                        camera.refusal,
                        camera.visible_to_agency,
                        camera.distance_m.map(|m| m as i64),
                    ],
                )
                .map_err(db("recording the request's cameras"))?;
            }
            tx.commit().map_err(db("committing the request"))?;
            load(conn, &id)?.ok_or_else(|| {
                RequestStoreError::Corrupt(format!("request {id} vanished after recording"))
            })
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<StoredRequest>, RequestStoreError> {
        self.with_conn(|conn| load(conn, id))
    }

    /// Requests, newest first; only those in `state` if given.
    pub fn list(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<StoredRequest>, RequestStoreError> {
        self.with_conn(|conn| {
            let ids: Vec<String> = {
                let mut statement = conn
                    .prepare(
                        "SELECT id FROM requests WHERE ?1 IS NULL OR state = ?1
                         ORDER BY received_us DESC, id",
                    )
                    .map_err(db("listing requests"))?;
                let rows = statement
                    .query_map(params![state.map(RequestState::as_str)], |row| row.get(0))
                    .map_err(db("listing requests"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(db("listing requests"))?
            };
            ids.iter()
                .filter_map(|id| load(conn, id).transpose())
                .collect()
        })
    }

    /// The owner approves: every camera waiting for them (`cameras` =
    /// `None`), or the named ones, which must be waiting (`await_owner` or
    /// `show_to_owner_only`). A `window` trims what is served and must lie
    /// inside what the policy allowed each chosen camera. Waiting cameras
    /// left out are denied. Never adds a camera the policy refused; only
    /// while something waits and the request has not expired.
    pub fn approve(
        &self,
        id: &str,
        cameras: Option<&[String]>,
        window: Option<TimeWindow>,
        now_us: i64,
    ) -> Result<StoredRequest, RequestStoreError> {
        if let Some(w) = window {
            if w.from_us >= w.to_us {
                return Err(RequestStoreError::EmptyWindow {
                    from: format_utc_us(w.from_us),
                    to: format_utc_us(w.to_us),
                });
            }
        }
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            let request = answerable(&tx, id, now_us)?;
            let chosen: Vec<&StoredCamera> = match cameras {
                None => {
                    let waiting: Vec<&StoredCamera> = request
                        .awaiting_cameras()
                        .filter(|c| c.outcome == outcome::AWAIT_OWNER)
                        .collect();
                    if waiting.is_empty() {
                        return Err(RequestStoreError::NothingToApprove {
                            id: id.to_string(),
                            hint: format!(
                                "only cameras shown to you are left; name them to share them: {}",
                                names(request.awaiting_cameras())
                            ),
                        });
                    }
                    waiting
                }
                Some([]) => return Err(RequestStoreError::NoCamerasNamed),
                Some(names_given) => {
                    let mut chosen: Vec<&StoredCamera> = Vec::new();
                    for name in names_given {
                        let camera = approvable_camera(&request, name)?;
                        if !chosen.iter().any(|c| c.camera == camera.camera) {
                            chosen.push(camera);
                        }
                    }
                    chosen
                }
            };
            for camera in &chosen {
                let allowed = camera.approvable_window.unwrap_or(request.window);
                let served = window.unwrap_or(allowed);
                if !served.is_within(&allowed) {
                    return Err(RequestStoreError::WindowOutside {
                        camera: camera.camera.clone(),
                        from: format_utc_us(served.from_us),
                        to: format_utc_us(served.to_us),
                        allowed_from: format_utc_us(allowed.from_us),
                        allowed_to: format_utc_us(allowed.to_us),
                    });
                }
                tx.execute(
                    "UPDATE request_cameras SET outcome = ?3, window_from_us = ?4, window_to_us = ?5
                     WHERE request_id = ?1 AND camera = ?2",
                    params![
                        id,
                        camera.camera,
                        outcome::APPROVED,
                        served.from_us,
                        served.to_us
                    ],
                )
                .map_err(db("approving a camera"))?;
            }
            let left_out: Vec<&StoredCamera> = request
                .awaiting_cameras()
                .filter(|c| !chosen.iter().any(|k| k.camera == c.camera))
                .collect();
            for camera in left_out {
                set_outcome(&tx, id, &camera.camera, outcome::DENIED)?;
            }
            finish(tx, id, None, now_us)
        })
    }

    /// The owner denies every camera still waiting, giving `reason`.
    /// Cameras the policy already served stay served (that footage is out).
    pub fn deny(
        &self,
        id: &str,
        reason: &str,
        now_us: i64,
    ) -> Result<StoredRequest, RequestStoreError> {
        let reason = reason.trim();
        let reason_ok = !reason.is_empty()
            && reason.chars().count() <= super::MAX_DENIAL_REASON_CHARS
            && !reason.chars().any(|c| c.is_control() && c != '\n');
        if !reason_ok {
            return Err(RequestStoreError::BadReason);
        }
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            let request = answerable(&tx, id, now_us)?;
            for camera in request.awaiting_cameras() {
                set_outcome(&tx, id, &camera.camera, outcome::DENIED)?;
            }
            finish(tx, id, Some(reason), now_us)
        })
    }

    /// Marks requests whose answer is overdue as expired (their waiting
    /// cameras `expired`) and returns them as they now are.
    pub fn expire_due(&self, now_us: i64) -> Result<Vec<StoredRequest>, RequestStoreError> {
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            let due: Vec<String> = {
                let mut statement = tx
                    .prepare(
                        "SELECT DISTINCT r.id FROM requests r
                         JOIN request_cameras c ON c.request_id = r.id
                         WHERE r.expires_us <= ?1 AND c.outcome IN (?2, ?3)
                         ORDER BY r.id",
                    )
                    .map_err(db("finding overdue requests"))?;
                let rows = statement
                    .query_map(
                        params![now_us, outcome::AWAIT_OWNER, outcome::SHOW_TO_OWNER_ONLY],
                        |row| row.get(0),
                    )
                    .map_err(db("finding overdue requests"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(db("finding overdue requests"))?
            };
            for id in &due {
                tx.execute(
                    "UPDATE request_cameras SET outcome = ?2, window_from_us = NULL, window_to_us = NULL
                     WHERE request_id = ?1 AND outcome IN (?3, ?4)",
                    params![
                        id,
                        outcome::EXPIRED,
                        outcome::AWAIT_OWNER,
                        outcome::SHOW_TO_OWNER_ONLY
                    ],
                )
                .map_err(db("expiring cameras"))?;
                update_state(&tx, id, None, now_us)?;
            }
            tx.commit().map_err(db("committing expiries"))?;
            due.iter()
                .filter_map(|id| load(conn, id).transpose())
                .collect()
        })
    }

    /// Issues a download token for a servable camera of a request, bound to
    /// the certificate that made the request and the window served now.
    /// The token is 32 random bytes, base64url without padding; only its
    /// SHA-256 is stored.
    pub fn issue_token(
        &self,
        id: &str,
        camera: &str,
        cert_fingerprint: &str,
        expires_us: i64,
    ) -> Result<String, RequestStoreError> {
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            let request =
                load(&tx, id)?.ok_or_else(|| RequestStoreError::UnknownRequest(id.to_string()))?;
            if request.cert_fingerprint != cert_fingerprint {
                return Err(RequestStoreError::CertificateMismatch { id: id.to_string() });
            }
            let stored = request
                .camera(camera)
                .ok_or_else(|| camera_not_in(&request, camera))?;
            let window = match (stored.is_servable(), stored.window) {
                (true, Some(window)) => window,
                _ => {
                    return Err(RequestStoreError::NotServable {
                        id: id.to_string(),
                        camera: camera.to_string(),
                        outcome: stored.outcome.clone(),
                    })
                }
            };
            let token =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            tx.execute(
                "INSERT INTO tokens (token_sha256, request_id, camera, cert_fingerprint,
                   window_from_us, window_to_us, audio, issued_us, expires_us, revoked_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
                params![
                    token_hash(&token),
                    id,
                    camera,
                    cert_fingerprint,
                    window.from_us,
                    window.to_us,
                    stored.audio,
                    crate::time::now_utc_us(),
                    expires_us,
                ],
            )
            .map_err(db("storing a token"))?;
            tx.commit().map_err(db("committing a token"))?;
            Ok(token)
        })
    }

    /// Checks a presented token against the request, camera and client
    /// certificate of the download. Any mismatch reads `Invalid`, so a
    /// token reveals nothing about other requests.
    pub fn check_token(
        &self,
        token: &str,
        id: &str,
        camera: &str,
        cert_fingerprint: &str,
        now_us: i64,
    ) -> Result<TokenGrant, TokenError> {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.as_bytes());
        if !matches!(decoded, Ok(ref bytes) if bytes.len() == 32) {
            return Err(TokenError::Invalid);
        }
        type Row = (String, String, String, i64, i64, bool, i64, Option<i64>);
        let row: Option<Row> = self.with_conn(|conn| {
            conn.query_row(
                "SELECT request_id, camera, cert_fingerprint, window_from_us, window_to_us, audio,
                        expires_us, revoked_us
                 FROM tokens WHERE token_sha256 = ?1",
                params![token_hash(token)],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(db("checking a token"))
        })?;
        let Some((req, cam, fingerprint, from_us, to_us, audio, expires_us, revoked)) = row else {
            return Err(TokenError::Invalid);
        };
        if req != id || cam != camera || fingerprint != cert_fingerprint {
            return Err(TokenError::Invalid);
        }
        if revoked.is_some() {
            return Err(TokenError::Revoked);
        }
        if now_us >= expires_us {
            return Err(TokenError::Expired);
        }
        Ok(TokenGrant {
            request_id: req,
            camera: cam,
            window: TimeWindow { from_us, to_us },
            audio,
            expires_us,
        })
    }

    /// Takes back everything given or waiting, at once (the owner leaves
    /// the relay): servable cameras become `revoked`, waiting ones
    /// `denied` with `reason`, and every download token is revoked.
    pub fn revoke_all(&self, reason: &str, now_us: i64) -> Result<RevokedAll, RequestStoreError> {
        self.with_conn(|conn| {
            let tx = immediate(conn)?;
            let rows: Vec<(String, String, String)> = {
                let mut statement = tx
                    .prepare(
                        "SELECT request_id, camera, outcome FROM request_cameras
                         WHERE outcome IN (?1, ?2, ?3, ?4) ORDER BY request_id, position",
                    )
                    .map_err(db("finding grants"))?;
                let rows = statement
                    .query_map(
                        params![
                            outcome::SERVE,
                            outcome::APPROVED,
                            outcome::AWAIT_OWNER,
                            outcome::SHOW_TO_OWNER_ONLY
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(db("finding grants"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(db("finding grants"))?
            };
            let mut summary = RevokedAll::default();
            let mut changed: Vec<(String, Vec<(String, String)>)> = Vec::new();
            for (id, camera, before) in rows {
                let after = if outcome::is_servable(&before) {
                    summary.grants += 1;
                    outcome::REVOKED
                } else {
                    summary.pending += 1;
                    outcome::DENIED
                };
                set_outcome(&tx, &id, &camera, after)?;
                match changed.last_mut() {
                    Some((last, cameras)) if *last == id => cameras.push((camera, before)),
                    _ => changed.push((id, vec![(camera, before)])),
                }
            }
            for (id, _) in &changed {
                update_state(&tx, id, Some(reason), now_us)?;
            }
            summary.tokens = tx
                .execute(
                    "UPDATE tokens SET revoked_us = ?1 WHERE revoked_us IS NULL",
                    params![now_us],
                )
                .map_err(db("revoking tokens"))?;
            for (id, cameras) in changed {
                if let Some(request) = load(&tx, &id)? {
                    summary.requests.push((request, cameras));
                }
            }
            tx.commit().map_err(db("committing the revocation"))?;
            Ok(summary)
        })
    }

    /// Revokes the tokens of one request, or every token; returns how many
    /// were still live.
    pub fn revoke_tokens(&self, id: Option<&str>) -> Result<usize, RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE tokens SET revoked_us = ?2
                 WHERE revoked_us IS NULL AND (?1 IS NULL OR request_id = ?1)",
                params![id, crate::time::now_utc_us()],
            )
            .map_err(db("revoking tokens"))
        })
    }
}

/// Pragmas: WAL so the CLI and the daemon can both write (busy_timeout
/// waits for the other), FULL sync because an owner's answer must survive a
/// power cut once acknowledged.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    crate::store::schema::run_migrations(conn, "requests.db", MIGRATIONS)
}

/// A write transaction that takes the lock up front: in WAL mode a read
/// transaction that later wants to write can fail with SQLITE_BUSY at once
/// (busy_timeout does not help), while one that starts as a writer waits.
fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, RequestStoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db("starting a write"))
}

/// `req_` + 20 random lowercase hex digits (80 bits: unguessable, short
/// enough to type).
fn new_request_id() -> String {
    let bytes = rand::random::<[u8; 10]>();
    let mut id = String::from("req_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn camera_from_decision(
    decision: &policy::CameraDecision,
    request_window: TimeWindow,
) -> StoredCamera {
    let (outcome, window, approvable, audio, refusal) = match &decision.outcome {
        Outcome::Serve { window, audio } => (outcome::SERVE, Some(*window), None, *audio, None),
        Outcome::AwaitOwner { window, audio } => (
            outcome::AWAIT_OWNER,
            Some(*window),
            Some(*window),
            *audio,
            None,
        ),
        // The policy gives no window here: the owner who names the camera
        // may approve up to the request's window (export's clip limit still
        // applies when footage is cut), never its audio.
        Outcome::ShowToOwnerOnly => (
            outcome::SHOW_TO_OWNER_ONLY,
            None,
            Some(request_window),
            false,
            None,
        ),
        Outcome::Refuse { reason } => (outcome::REFUSE, None, None, false, Some(reason.code())),
    };
    StoredCamera {
        camera: decision.camera.clone(),
        outcome: outcome.to_string(),
        window,
        audio,
        refusal: refusal.map(str::to_string),
        approvable_window: approvable,
        visible_to_agency: decision.visible_to_agency(),
        distance_m: None,
    }
}

/// Whole metres: finer than any camera's placement is known, coarse enough
/// that the owner reads it at a glance.
fn rounded_metres(metres: f64) -> u64 {
    if metres.is_finite() && metres > 0.0 {
        metres.round() as u64
    } else {
        0
    }
}

/// A request's state from its cameras' outcomes.
fn derive_state(cameras: &[StoredCamera]) -> RequestState {
    let awaiting = cameras.iter().any(StoredCamera::is_awaiting);
    let granted = cameras.iter().any(StoredCamera::is_servable);
    let all_visible_granted = cameras
        .iter()
        .filter(|c| c.visible_to_agency)
        .all(StoredCamera::is_servable);
    let expired = cameras.iter().any(|c| c.outcome == outcome::EXPIRED);
    match (awaiting, granted) {
        (true, false) => RequestState::Pending,
        (true, true) => RequestState::PartiallyApproved,
        (false, true) if all_visible_granted => RequestState::Approved,
        (false, true) => RequestState::PartiallyApproved,
        (false, false) if expired => RequestState::Expired,
        (false, false) => RequestState::Denied,
    }
}

/// Loads a request that the owner may still answer, inside `tx`.
fn answerable(
    tx: &Transaction<'_>,
    id: &str,
    now_us: i64,
) -> Result<StoredRequest, RequestStoreError> {
    let request = load(tx, id)?.ok_or_else(|| RequestStoreError::UnknownRequest(id.to_string()))?;
    let awaiting = request.awaiting_cameras().next().is_some();
    if request.state == RequestState::Expired || (awaiting && now_us >= request.expires_us) {
        return Err(RequestStoreError::Expired {
            id: id.to_string(),
            expired_at: format_utc_us(request.expires_us),
        });
    }
    if !awaiting {
        return Err(RequestStoreError::AlreadyAnswered {
            id: id.to_string(),
            state: request.state,
        });
    }
    Ok(request)
}

fn approvable_camera<'r>(
    request: &'r StoredRequest,
    name: &str,
) -> Result<&'r StoredCamera, RequestStoreError> {
    let camera = request
        .camera(name)
        .ok_or_else(|| camera_not_in(request, name))?;
    if camera.is_awaiting() {
        return Ok(camera);
    }
    let why = match (camera.outcome.as_str(), &camera.refusal) {
        (outcome::REFUSE, Some(refusal)) => {
            format!("your policy refused it ({refusal}); an approval cannot add it")
        }
        (outcome::REFUSE, None) => "your policy refused it; an approval cannot add it".into(),
        (outcome::SERVE, _) => "it was already served under your emergency setting".into(),
        (other, _) => format!("it is already {other}"),
    };
    Err(RequestStoreError::CameraNotApprovable {
        id: request.id.clone(),
        camera: name.to_string(),
        why,
    })
}

fn camera_not_in(request: &StoredRequest, name: &str) -> RequestStoreError {
    RequestStoreError::CameraNotInRequest {
        id: request.id.clone(),
        camera: name.to_string(),
        known: names(request.cameras.iter()),
    }
}

fn names<'a>(cameras: impl Iterator<Item = &'a StoredCamera>) -> String {
    let list: Vec<&str> = cameras.map(|c| c.camera.as_str()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn set_outcome(
    tx: &Transaction<'_>,
    id: &str,
    camera: &str,
    outcome: &str,
) -> Result<(), RequestStoreError> {
    tx.execute(
        "UPDATE request_cameras SET outcome = ?3, window_from_us = NULL, window_to_us = NULL
         WHERE request_id = ?1 AND camera = ?2",
        params![id, camera, outcome],
    )
    .map_err(db("updating a camera"))?;
    Ok(())
}

/// Recomputes and stores the request's state after its cameras changed.
fn update_state(
    tx: &Transaction<'_>,
    id: &str,
    denial_reason: Option<&str>,
    now_us: i64,
) -> Result<RequestState, RequestStoreError> {
    let request = load(tx, id)?.ok_or_else(|| RequestStoreError::UnknownRequest(id.to_string()))?;
    let state = derive_state(&request.cameras);
    tx.execute(
        "UPDATE requests SET state = ?2, denial_reason = COALESCE(?3, denial_reason), answered_us = ?4
         WHERE id = ?1",
        params![id, state.as_str(), denial_reason, now_us],
    )
    .map_err(db("updating the request's state"))?;
    Ok(state)
}

fn finish(
    tx: Transaction<'_>,
    id: &str,
    denial_reason: Option<&str>,
    now_us: i64,
) -> Result<StoredRequest, RequestStoreError> {
    update_state(&tx, id, denial_reason, now_us)?;
    let request =
        load(&tx, id)?.ok_or_else(|| RequestStoreError::UnknownRequest(id.to_string()))?;
    tx.commit().map_err(db("committing the answer"))?;
    Ok(request)
}

fn window(from: Option<i64>, to: Option<i64>) -> Option<TimeWindow> {
    Some(TimeWindow {
        from_us: from?,
        to_us: to?,
    })
}

/// Reads one request and its cameras; `None` if there is no such id.
fn load(conn: &Connection, id: &str) -> Result<Option<StoredRequest>, RequestStoreError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        String,
        Option<String>,
        Option<i64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT agency, cert_fingerprint, officer, case_id, incident_type, legal_basis, reason,
                    window_from_us, window_to_us, received_us, expires_us, state, denial_reason,
                    answered_us, incident_lat, incident_lon, radius_m
             FROM requests WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                    r.get(15)?,
                    r.get(16)?,
                ))
            },
        )
        .optional()
        .map_err(db("reading a request"))?;
    let Some((
        agency,
        cert_fingerprint,
        officer,
        case_id,
        incident_type,
        legal_basis,
        reason,
        from_us,
        to_us,
        received_us,
        expires_us,
        state,
        denial_reason,
        answered_us,
        lat,
        lon,
        radius_m,
    )) = row
    else {
        return Ok(None);
    };
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        RequestStoreError::Corrupt(format!("request {id}: unreadable {what}: {e}"))
    };
    let officer = serde_json::from_str(&officer).map_err(|e| corrupt("officer", &e))?;
    let legal_basis = serde_json::from_str(&legal_basis).map_err(|e| corrupt("legal basis", &e))?;
    let state = state.parse().map_err(|e: String| corrupt("state", &e))?;

    let mut statement = conn
        .prepare_cached(
            "SELECT camera, outcome, window_from_us, window_to_us, approvable_from_us,
                    approvable_to_us, audio, refusal, visible_to_agency, distance_m
             FROM request_cameras WHERE request_id = ?1 ORDER BY position",
        )
        .map_err(db("reading a request's cameras"))?;
    let cameras = statement
        .query_map(params![id], |r| {
            Ok(StoredCamera {
                camera: r.get(0)?,
                outcome: r.get(1)?,
                window: window(r.get(2)?, r.get(3)?),
                approvable_window: window(r.get(4)?, r.get(5)?),
                audio: r.get(6)?,
                refusal: r.get(7)?,
                visible_to_agency: r.get(8)?,
                distance_m: r
                    .get::<_, Option<i64>>(9)?
                    .and_then(|m| u64::try_from(m).ok()),
            })
        })
        .map_err(db("reading a request's cameras"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("reading a request's cameras"))?;
    Ok(Some(StoredRequest {
        id: id.to_string(),
        agency,
        cert_fingerprint,
        officer,
        case_id,
        incident_type,
        legal_basis,
        reason,
        window: TimeWindow { from_us, to_us },
        location: match (lat, lon) {
            (Some(lat), Some(lon)) => GeoPoint::new(lat, lon).ok(),
            _ => None,
        },
        radius_m,
        received_us,
        expires_us,
        answered_us,
        state,
        denial_reason,
        cameras,
    }))
}
