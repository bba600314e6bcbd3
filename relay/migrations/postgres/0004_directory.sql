-- PostgreSQL version of ../0004_directory.sql (identical: that file is already portable SQL).

-- 1 for users created by a successful directory sign-in: they have no password hash here (the column
-- holds '') and can only sign in through the directory.
ALTER TABLE users ADD COLUMN is_directory BIGINT NOT NULL DEFAULT 0;

-- The directory groups of a directory user as of their latest sign-in (lowercase group names).
CREATE TABLE user_groups (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);
CREATE INDEX user_groups_group_name ON user_groups (group_name);

-- Workstations assigned to every member of a directory group (lowercase group name).
CREATE TABLE group_assignments (
    group_name TEXT NOT NULL,
    workstation_id BIGINT NOT NULL REFERENCES workstations (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, workstation_id)
);
