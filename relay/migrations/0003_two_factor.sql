-- Two-factor authentication (see relay/src/twofa.rs). Portable SQL, timestamps in Unix milliseconds,
-- booleans as BIGINT 0/1.

-- Who must use a second factor. `kind` is 'user' (a portal user name) or 'group' (a directory group
-- name, resolved at sign-in by the directory backend); names, not ids, so that directory users and
-- groups that have no row here yet can be listed.
CREATE TABLE twofa_members (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Second-factor state of one user: delivery method, the encrypted TOTP secret, enrolment and the
-- last accepted time step (single use), and the window in which new sessions need no new code.
CREATE TABLE twofa_users (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- 'totp' (authenticator app), 'sms' or 'email'.
    method TEXT NOT NULL DEFAULT 'totp',
    phone TEXT,
    email TEXT,
    -- base64(nonce || AES-256-GCM ciphertext) of the secret, bound to the user id; NULL = none yet.
    secret_enc TEXT,
    -- 1 once a code from the current secret was accepted.
    enrolled BIGINT NOT NULL DEFAULT 0,
    -- The last accepted TOTP time step; a code of this step or an older one is refused.
    last_step BIGINT,
    -- Start of the user's first session after a code, and the client IP it came from (validity window).
    session_at BIGINT,
    session_ip TEXT,
    updated_at BIGINT NOT NULL
);

-- Sessions that passed the password but not yet the second factor: no ticket, no tunnel.
ALTER TABLE sessions ADD COLUMN pending_factor BIGINT NOT NULL DEFAULT 0;
-- When the second factor was completed (NULL when none was asked), and when the first ticket was issued.
ALTER TABLE sessions ADD COLUMN factor_at BIGINT;
ALTER TABLE sessions ADD COLUMN first_ticket_at BIGINT;

-- Codes sent by SMS or email: only a keyed MAC of the code is stored; single use through one
-- conditional UPDATE; rows also count the sends per user per hour.
CREATE TABLE twofa_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_mac TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX twofa_codes_user_sent ON twofa_codes (user_id, sent_at);
CREATE INDEX twofa_codes_expires ON twofa_codes (expires_at);
