-- Brute-force defence (see relay/src/bruteforce.rs). Portable SQL, timestamps in Unix milliseconds.
-- Rows here are bounded: failures older than the window (and beyond a row cap) are deleted, expired
-- blocks are deleted by the periodic housekeeping.

-- One row per failed sign-in (password today, second factor later). `account` is the name that was
-- typed (NULL when the failure is not tied to an account), whether or not such a user exists.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ip TEXT NOT NULL,
    account TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_ip_at ON login_failures (ip, at);
CREATE INDEX login_failures_account_at ON login_failures (account, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- Client IPs refused until `blocked_until`; kept a little after expiry so that the failures that
-- caused a block do not count again.
CREATE TABLE blocked_ips (
    ip TEXT PRIMARY KEY,
    blocked_at BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL,
    reason TEXT NOT NULL,
    failures BIGINT NOT NULL
);
CREATE INDEX blocked_ips_until ON blocked_ips (blocked_until);

-- Addresses and CIDR ranges that are never blocked (canonical text form, e.g. 10.0.0.0/8).
CREATE TABLE ip_whitelist (
    cidr TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- IPs from which an account has signed in successfully: exempt from that account's slow-down.
CREATE TABLE account_known_ips (
    account TEXT NOT NULL,
    ip TEXT NOT NULL,
    last_success BIGINT NOT NULL,
    PRIMARY KEY (account, ip)
);
CREATE INDEX account_known_ips_last_success ON account_known_ips (last_success);
