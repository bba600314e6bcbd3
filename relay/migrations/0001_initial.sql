-- Homedesk broker schema (SQLite). Kept to portable SQL so that a PostgreSQL copy of these
-- migrations only needs `INTEGER PRIMARY KEY AUTOINCREMENT` → `BIGSERIAL PRIMARY KEY`.
-- All timestamps are Unix milliseconds (BIGINT).

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE workstations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    domain TEXT,
    notes TEXT,
    -- SHA-256 (lowercase hex) of the workstation's TLS certificate, pinned on first use.
    cert_sha256 TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE assignments (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workstation_id BIGINT NOT NULL REFERENCES workstations (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, workstation_id)
);

CREATE TABLE sessions (
    -- SHA-256 (hex) of the session id; the id itself only lives in the browser's cookie.
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE tickets (
    -- SHA-256 (hex) of the ticket; the ticket itself is handed to the browser once.
    hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workstation_id BIGINT NOT NULL REFERENCES workstations (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tickets_expires_at ON tickets (expires_at);

-- One-off facts about this installation (e.g. that the first admin account was created).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
