-- The audit log (relay/src/audit.rs): sign-ins and their failures, admin changes from the console and
-- the CLI, tunnels opened and closed. Append-only; timestamps in Unix milliseconds. Never holds secrets.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    ip TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
