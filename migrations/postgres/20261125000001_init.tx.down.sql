DROP TABLE messages;
--bun:split
DROP TABLE participants;
--bun:split
DROP TABLE conversations;
--bun:split
DROP TABLE jobs;
--bun:split
DROP TABLE profiles;
