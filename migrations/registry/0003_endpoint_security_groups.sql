-- The security groups an endpoint was created with (CreateVpcEndpoint's
-- SecurityGroupId.N): accepted and stored as EC2 shows them; not enforced.
CREATE TABLE endpoint_security_groups (
    vpce_id  TEXT NOT NULL REFERENCES vpc_endpoints (vpce_id) ON DELETE CASCADE,
    group_id TEXT NOT NULL,
    PRIMARY KEY (vpce_id, group_id)
);
