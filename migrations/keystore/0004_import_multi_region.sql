-- Imported key material (origin EXTERNAL) and multi-Region keys.
--
-- expiration_model / valid_to: as ImportKeyMaterial set them (NULL for keys without
-- imported material). import_fingerprint: SHA-256 over the key ARN and the imported
-- material, so that only the same material can be imported again once deleted (the
-- material itself is gone with its key_materials row).
-- primary_region: for multi-Region keys, the Region of the primary key of the set.
-- The row id of a multi-Region key is `<key id>|<region>` (primary and replicas
-- share the key id); every other key's row id is its key id.

ALTER TABLE keys ADD COLUMN expiration_model TEXT;
ALTER TABLE keys ADD COLUMN valid_to INTEGER;
ALTER TABLE keys ADD COLUMN import_fingerprint BLOB;
ALTER TABLE keys ADD COLUMN primary_region TEXT;
