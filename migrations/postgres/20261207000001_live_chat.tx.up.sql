-- Delivery ticks: a second pointer beside last_read_seq. Everything read was
-- delivered, so it starts there.
ALTER TABLE participants ADD COLUMN last_delivered_seq bigint NOT NULL DEFAULT 0;
--bun:split
UPDATE participants SET last_delivered_seq = last_read_seq;
--bun:split
-- Edits, deletions and job events live on the message row; a deleted message
-- keeps its row and seq with its content cleared.
ALTER TABLE messages ADD COLUMN edited_at timestamptz;
--bun:split
ALTER TABLE messages ADD COLUMN deleted_at timestamptz;
--bun:split
ALTER TABLE messages ADD COLUMN job_event text;
--bun:split
ALTER TABLE conversations ADD COLUMN status text NOT NULL DEFAULT 'OPEN';
--bun:split
ALTER TABLE conversations ADD COLUMN closed_at timestamptz;
--bun:split
ALTER TABLE conversations ADD COLUMN close_reason text;
--bun:split
-- One row per (message, user, emoji): adding twice is a no-op by the key.
CREATE TABLE reactions (
    message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    profile_id text NOT NULL,
    emoji      text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, profile_id, emoji)
);
