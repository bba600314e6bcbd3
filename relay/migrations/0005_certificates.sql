-- HTTPS certificates of the portal (see relay/src/acme.rs and relay/src/certificates.rs).
-- Portable SQL; timestamps in Unix milliseconds; booleans as BIGINT 0/1.
-- Everything lives in the database (not in files) so that every relay sharing it serves the same
-- certificate and answers the same HTTP-01 challenges, and so that an install is one transaction.

-- Every certificate obtained from the CA or imported: never deleted. At most one row is active; when
-- none is, the relay serves its self-signed certificate (tls/cert.pem).
CREATE TABLE certificates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'acme' (obtained from the CA) or 'imported' (PEM files given by the administrator).
    source TEXT NOT NULL,
    -- First DNS name of the certificate, for display.
    domain TEXT NOT NULL,
    -- Issuer's distinguished name, for display.
    issuer TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    -- PEM chain, leaf first, and the PEM private key (PKCS#8, SEC1 or PKCS#1).
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active BIGINT NOT NULL DEFAULT 0,
    -- When it stopped being served (NULL while active or if never replaced).
    replaced_at BIGINT
);
CREATE INDEX certificates_active ON certificates (active);

-- The free certificate's settings and the outcome of the last attempt: a single row (id = 1).
CREATE TABLE acme_settings (
    id BIGINT PRIMARY KEY,
    email TEXT NOT NULL,
    -- NULL after Reset Domain: nothing to renew.
    domain TEXT,
    -- The terms-of-service URL the administrator accepted.
    terms_url TEXT,
    directory_url TEXT NOT NULL,
    -- instant-acme's account credentials (JSON, holds the account key): bound to directory_url.
    account_credentials TEXT,
    last_attempt_at BIGINT,
    -- 0 = success, else an error code 801..806.
    last_result_code BIGINT,
    last_result_message TEXT,
    -- When the serving relay will look again (renewal check or ARI window).
    next_check_at BIGINT
);

-- Work for the serving relay (which owns the HTTP port that answers HTTP-01): the CLI and the future
-- console insert a row and read its outcome. Kinds: 'terms' (look up the CA's terms of service),
-- 'request' (register, validate, issue, install), 'renew' (renew now).
CREATE TABLE acme_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    email TEXT,
    domain TEXT,
    terms_url TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    -- 0 = success, else an error code 801..806.
    result_code BIGINT,
    result_message TEXT
);
CREATE INDEX acme_jobs_pending ON acme_jobs (started_at);

-- HTTP-01 tokens being validated right now: /.well-known/acme-challenge/<token> answers only these.
CREATE TABLE acme_challenges (
    token TEXT PRIMARY KEY,
    key_authorization TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
