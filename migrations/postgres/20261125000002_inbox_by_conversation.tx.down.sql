DROP INDEX participants_profile_idx;
ALTER TABLE participants ADD COLUMN last_activity_at timestamptz;
UPDATE participants p SET last_activity_at = c.updated_at FROM conversations c WHERE c.id = p.conversation_id;
ALTER TABLE participants ALTER COLUMN last_activity_at SET NOT NULL;
CREATE INDEX participants_inbox_idx ON participants (profile_id, last_activity_at DESC, conversation_id DESC);
