DROP TABLE notify_webhook_off;
--bun:split
DROP TABLE notify_outbox;
