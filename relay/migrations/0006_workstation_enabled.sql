-- Workstations can be disabled by an administrator (issue #4): a disabled workstation is not offered to
-- users, gets no ticket and no native RDP routing; pipes already open are not cut. Boolean as BIGINT 0/1.
ALTER TABLE workstations ADD COLUMN enabled BIGINT NOT NULL DEFAULT 1;
