ALTER TABLE messages DROP COLUMN flags;
--bun:split
ALTER TABLE messages DROP COLUMN original_text;
--bun:split
ALTER TABLE conversations DROP COLUMN contact_policy;
