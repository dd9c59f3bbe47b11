DROP INDEX participants_profile_idx;
ALTER TABLE participants ADD COLUMN last_activity_at timestamp NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE participants SET last_activity_at = (SELECT updated_at FROM conversations c WHERE c.id = participants.conversation_id);
CREATE INDEX participants_inbox_idx ON participants (profile_id, last_activity_at DESC, conversation_id DESC);
