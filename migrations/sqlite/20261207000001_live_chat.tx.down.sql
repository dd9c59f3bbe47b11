DROP TABLE reactions;
--bun:split
ALTER TABLE conversations DROP COLUMN close_reason;
--bun:split
ALTER TABLE conversations DROP COLUMN closed_at;
--bun:split
ALTER TABLE conversations DROP COLUMN status;
--bun:split
ALTER TABLE messages DROP COLUMN job_event;
--bun:split
ALTER TABLE messages DROP COLUMN deleted_at;
--bun:split
ALTER TABLE messages DROP COLUMN edited_at;
--bun:split
ALTER TABLE participants DROP COLUMN last_delivered_seq;
