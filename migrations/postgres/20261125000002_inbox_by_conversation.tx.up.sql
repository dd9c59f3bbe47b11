-- The inbox orders by the conversation's own activity (conversations.updated_at),
-- which is the same for both participants. Keeping a copy on every participant
-- row made each send rewrite both rows on an indexed column: two more non-HOT
-- updates and four more index insertions per message.
DROP INDEX participants_inbox_idx;
ALTER TABLE participants DROP COLUMN last_activity_at;
CREATE INDEX participants_profile_idx ON participants (profile_id, conversation_id);
