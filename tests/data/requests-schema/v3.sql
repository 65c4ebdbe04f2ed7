CREATE TABLE deliveries (
    request_id TEXT NOT NULL REFERENCES requests (id),
    camera TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,                 -- of the whole package file
    built_us INTEGER NOT NULL, removed_us INTEGER,
    PRIMARY KEY (request_id, camera)
) STRICT;
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
    visible_to_agency INTEGER NOT NULL, distance_m INTEGER,
    PRIMARY KEY (request_id, camera)
) STRICT;
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
, incident_lat REAL, incident_lon REAL, radius_m REAL) STRICT;
CREATE INDEX requests_by_agency_time ON requests (agency, received_us);
CREATE INDEX requests_by_case ON requests (agency, case_id);
CREATE INDEX requests_by_state_expiry ON requests (state, expires_us);
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
