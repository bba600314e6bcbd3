-- Web server management (issue #4, see relay/src/server_admin.rs). Portable SQL; timestamps in Unix
-- milliseconds. The settings themselves (ports, bind address, web root) are rows `server.*` of `settings`.

-- Work for a serving relay, queued by the CLI or the admin console, like acme_jobs: the relay owns the
-- sockets, so only it can bind a new port (and keep the old one when that fails). Kinds: 'apply' (new
-- settings: NULL columns keep the current value), 'restart', 'stop', 'start'.
CREATE TABLE server_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    https_port BIGINT,
    http_port BIGINT,
    bind TEXT,
    web_root TEXT,
    -- 1: set web_root to none (serve the "client not built" page).
    clear_web_root BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    -- 0 = done, 1 = refused (the message says why; nothing changed).
    result_code BIGINT,
    result_message TEXT
);
CREATE INDEX server_jobs_pending ON server_jobs (started_at);

-- What each serving relay's listeners are doing, refreshed while it runs (`seen_at`), removed when it
-- stops: the status shown by `relay server status` and the console.
CREATE TABLE relay_listeners (
    relay_id TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    -- 'listening' or 'stopped'.
    state TEXT NOT NULL,
    error TEXT,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (relay_id, name)
);
