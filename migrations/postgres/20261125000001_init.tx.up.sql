CREATE TABLE profiles (
    id           text PRIMARY KEY,
    display_name text NOT NULL,
    avatar_url   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
--bun:split
CREATE TABLE jobs (
    id         text PRIMARY KEY,
    title      text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
--bun:split
-- job_key is "jobId/clientId/workerId" escaped: the job-service's retries of
-- createConversationForJob find the conversation they opened through it.
CREATE TABLE conversations (
    id              text PRIMARY KEY,
    job_id          text NOT NULL REFERENCES jobs (id),
    job_key         text NOT NULL UNIQUE,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_message_id text,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
--bun:split
CREATE INDEX conversations_activity_idx ON conversations (updated_at DESC, id DESC);
--bun:split
CREATE INDEX conversations_job_idx ON conversations (job_id);
--bun:split
CREATE TABLE participants (
    conversation_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    profile_id       text NOT NULL REFERENCES profiles (id),
    role             text NOT NULL,
    last_read_seq    bigint NOT NULL DEFAULT 0,
    last_activity_at timestamptz NOT NULL,
    joined_at        timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, profile_id)
);
--bun:split
-- The inbox: a profile's conversations, newest activity first.
CREATE INDEX participants_inbox_idx ON participants (profile_id, last_activity_at DESC, conversation_id DESC);
--bun:split
CREATE TABLE messages (
    id                    text PRIMARY KEY,
    conversation_id       text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                   bigint NOT NULL,
    sender_id             text REFERENCES profiles (id),
    sender_name           text,
    message_text          text NOT NULL,
    message_type          text NOT NULL,
    location_latitude     double precision,
    location_longitude    double precision,
    location_label        text,
    attachment_url        text,
    attachment_file_name  text,
    attachment_mime_type  text,
    attachment_size_bytes bigint,
    client_message_id     text,
    idempotency_key       text,
    created_at            timestamptz NOT NULL
);
--bun:split
-- History: a conversation's messages by seq; unique, so a seq is never given twice.
CREATE UNIQUE INDEX messages_history_idx ON messages (conversation_id, seq);
--bun:split
CREATE UNIQUE INDEX messages_client_id_idx ON messages (sender_id, client_message_id) WHERE client_message_id IS NOT NULL;
--bun:split
CREATE UNIQUE INDEX messages_idempotency_idx ON messages (conversation_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
