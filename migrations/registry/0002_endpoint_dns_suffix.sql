-- The stable random part of an endpoint's DNS names
-- (`vpce-<id>-<suffix>.kms.<region>.vpce.amazonaws.com`), fixed at creation.
ALTER TABLE vpc_endpoints ADD COLUMN dns_suffix TEXT NOT NULL DEFAULT '';
-- Endpoints created before this migration get a suffix now (8 lowercase hex).
UPDATE vpc_endpoints SET dns_suffix = lower(hex(randomblob(4))) WHERE dns_suffix = '';
