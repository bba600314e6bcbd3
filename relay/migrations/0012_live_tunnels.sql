-- The live tunnels of every serving relay (issue #4, scale-out): each relay writes its own rows every few
-- seconds (bytes, seen_at) and deletes them when the tunnels end, so the admin console of any relay lists
-- all of them. A disconnect asked on another relay sets close_requested_at; the owning relay closes that
-- tunnel at its next sync. Rows of a relay that stopped refreshing them (killed) are ignored once stale
-- and deleted by the housekeeping. ids are random and below 2^53 (exact in JavaScript), unique across
-- relays. Timestamps in Unix ms.
CREATE TABLE live_tunnels (
    id BIGINT PRIMARY KEY,
    relay_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    workstation TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    bytes_up BIGINT NOT NULL,
    bytes_down BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    close_requested_at BIGINT
);
CREATE INDEX live_tunnels_relay ON live_tunnels (relay_id);
