-- Portal designer (issue #8): published login pages and the images uploaded for them.
-- A page is served at /<name>.html ("index" replaces the default page at /) with its own design and login
-- preferences, each a JSON document validated by relay/src/portal_design.rs. Timestamps in Unix ms,
-- booleans as BIGINT 0/1.
CREATE TABLE portal_pages (
    name TEXT PRIMARY KEY,
    design TEXT NOT NULL,
    preferences TEXT NOT NULL,
    published BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT
);

-- Uploaded logos and backgrounds live in the database (not the data directory) so that every relay
-- sharing it serves them and one transaction stores an image together with the page that uses it.
-- id = SHA-256 of the bytes (lowercase hex), data = the bytes in standard base64 (portable text column).
CREATE TABLE portal_assets (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
