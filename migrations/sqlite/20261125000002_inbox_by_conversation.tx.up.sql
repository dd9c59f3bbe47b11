-- The inbox orders by the conversation's own activity (conversations.updated_at),
-- which is the same for both participants; see the PostgreSQL migration.
DROP INDEX participants_inbox_idx;
ALTER TABLE participants DROP COLUMN last_activity_at;
CREATE INDEX participants_profile_idx ON participants (profile_id, conversation_id);
