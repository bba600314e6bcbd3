-- The TOTP algorithm each user enrolled with (PostgreSQL version of ../0011_twofa_algorithm.sql; see relay/src/twofa.rs): 'SHA1', 'SHA256' or 'SHA512'.
-- Fixed at enrolment so that changing the `twofa.algorithm` setting never breaks an enrolled
-- authenticator; every enrolment made before this column existed used SHA-1.
ALTER TABLE twofa_users ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'SHA1';
