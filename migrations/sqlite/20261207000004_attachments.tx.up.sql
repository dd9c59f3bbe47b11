-- Uploaded attachments (issue 9, section 1). An upload is stored first
-- (uploadAttachment) and sent later: sendMessage with input.attachment.id
-- sets message_id in the transaction that stores the message. Rows still
-- unsent after a day are deleted with their files by the sweeper
-- (db/attachment.go, resolvers/upload_sweep.go).
CREATE TABLE attachments (
    id              text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    uploader_id     text NOT NULL,
    -- Where the file and its thumbnail (images only) are in the file
    -- store; signed /files/ URLs are made from them at every read.
    file_key        text NOT NULL,
    thumb_key       text,
    -- Sniffed from the bytes, never the client's word.
    content_type    text NOT NULL,
    name            text NOT NULL,
    size_bytes      bigint NOT NULL,
    -- Pixels of an image as shown; NULL for other files.
    width           integer,
    height          integer,
    message_id      text,
    created_at      timestamp NOT NULL
);
--bun:split
-- The sweeper's scan: unsent uploads, oldest first.
CREATE INDEX attachments_unsent_idx ON attachments (created_at) WHERE message_id IS NULL;
--bun:split
-- A message shows an uploaded attachment from these columns, copied from
-- its row when sent, so that reading or broadcasting it costs no join;
-- attachment_url stays NULL for them. The file name, type and size go in
-- the attachment_* columns a URL attachment uses.
ALTER TABLE messages ADD COLUMN attachment_id text;
--bun:split
ALTER TABLE messages ADD COLUMN attachment_key text;
--bun:split
ALTER TABLE messages ADD COLUMN attachment_thumb_key text;
--bun:split
ALTER TABLE messages ADD COLUMN attachment_width integer;
--bun:split
ALTER TABLE messages ADD COLUMN attachment_height integer;
