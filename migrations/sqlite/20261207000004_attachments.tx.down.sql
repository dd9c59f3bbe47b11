ALTER TABLE messages DROP COLUMN attachment_height;
--bun:split
ALTER TABLE messages DROP COLUMN attachment_width;
--bun:split
ALTER TABLE messages DROP COLUMN attachment_thumb_key;
--bun:split
ALTER TABLE messages DROP COLUMN attachment_key;
--bun:split
ALTER TABLE messages DROP COLUMN attachment_id;
--bun:split
DROP TABLE attachments;
