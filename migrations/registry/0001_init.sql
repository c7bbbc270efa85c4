-- Registry: the EC2-side model of VPCs, subnets, VPC endpoints and the network
-- interfaces (private IPs) the gateway listens on.

CREATE TABLE vpcs (
    vpc_id               TEXT PRIMARY KEY NOT NULL,
    owner_account_id     TEXT NOT NULL,
    cidr_block           TEXT NOT NULL,
    enable_dns_support   INTEGER NOT NULL DEFAULT 1,
    enable_dns_hostnames INTEGER NOT NULL DEFAULT 0,
    state                TEXT NOT NULL DEFAULT 'available'
);
CREATE INDEX vpcs_owner ON vpcs (owner_account_id);

CREATE TABLE subnets (
    subnet_id         TEXT PRIMARY KEY NOT NULL,
    vpc_id            TEXT NOT NULL REFERENCES vpcs (vpc_id),
    cidr_block        TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    owner_account_id  TEXT NOT NULL
);
CREATE INDEX subnets_vpc ON subnets (vpc_id);
CREATE INDEX subnets_owner ON subnets (owner_account_id);

CREATE TABLE vpc_endpoints (
    vpce_id             TEXT PRIMARY KEY NOT NULL,
    vpc_id              TEXT NOT NULL REFERENCES vpcs (vpc_id),
    owner_account_id    TEXT NOT NULL,
    service_name        TEXT NOT NULL,
    policy_document     TEXT NOT NULL,
    private_dns_enabled INTEGER NOT NULL DEFAULT 0,
    state               TEXT NOT NULL DEFAULT 'available',
    -- unix milliseconds
    created             INTEGER NOT NULL
);
CREATE INDEX vpc_endpoints_vpc ON vpc_endpoints (vpc_id);
CREATE INDEX vpc_endpoints_owner ON vpc_endpoints (owner_account_id);

-- The subnets an endpoint was placed in (at most one per availability zone).
CREATE TABLE endpoint_subnets (
    vpce_id   TEXT NOT NULL REFERENCES vpc_endpoints (vpce_id) ON DELETE CASCADE,
    subnet_id TEXT NOT NULL REFERENCES subnets (subnet_id),
    PRIMARY KEY (vpce_id, subnet_id)
);

-- One interface per endpoint subnet; its private IP is a listener address of
-- the gateway, and a connection arriving on it came through the endpoint.
CREATE TABLE network_interfaces (
    eni_id     TEXT PRIMARY KEY NOT NULL,
    vpce_id    TEXT NOT NULL REFERENCES vpc_endpoints (vpce_id) ON DELETE CASCADE,
    subnet_id  TEXT NOT NULL REFERENCES subnets (subnet_id),
    private_ip TEXT NOT NULL UNIQUE
);
CREATE INDEX network_interfaces_vpce ON network_interfaces (vpce_id);
