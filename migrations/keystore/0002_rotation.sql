-- Automatic rotation of symmetric keys: the period (NULL = automatic rotation off)
-- and when the next rotation is due; and how each material after the first came to
-- be (AUTOMATIC or ON_DEMAND; NULL for a key's original material).

ALTER TABLE keys ADD COLUMN rotation_period_days INTEGER;
ALTER TABLE keys ADD COLUMN next_rotation_date INTEGER;

ALTER TABLE key_materials ADD COLUMN rotation_type TEXT;
