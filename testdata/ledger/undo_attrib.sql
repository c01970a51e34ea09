-- Takes the attribution step (sessions' project and git state, reservations' project) back out
-- of a current ledger, before undo_v19.sql turns it into a version-18 one.
DROP INDEX sessions_head;
DROP INDEX sessions_end_head;
DROP INDEX sessions_project;
ALTER TABLE sessions DROP COLUMN project;
ALTER TABLE sessions DROP COLUMN repo;
ALTER TABLE sessions DROP COLUMN branch;
ALTER TABLE sessions DROP COLUMN head;
ALTER TABLE sessions DROP COLUMN end_branch;
ALTER TABLE sessions DROP COLUMN end_head;
ALTER TABLE reservations DROP COLUMN project;
