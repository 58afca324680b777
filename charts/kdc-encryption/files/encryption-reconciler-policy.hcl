# OpenBao ACL policy for the encryption-reconciler's token (policy name: kdc-encryption-reconciler).
# Every rule below is a call the controller makes (docs/security-model.md has the inventory);
# anything else is denied. Paths without a prefix act in the root namespace; the "+/" twins act
# in an organisation's OpenBao namespace (kube-dc.com/organization) from a root-namespace token.
# Create the token with exactly this policy and no default policy, renewable:
#   bao policy write kdc-encryption-reconciler encryption-reconciler-policy.hcl
#   bao token create -orphan -no-default-policy -policy=kdc-encryption-reconciler -period=24h

# The token itself: the controller looks it up and renews it at two thirds of its TTL.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Organisation namespaces: looked up, and created the first time a KMSKey needs one.
path "sys/namespaces/+" {
  capabilities = ["create", "read", "update"]
}

# Secrets engines: the mount list, and enabling transit/ and the kdc/ ownership registry (KV v2),
# of exactly those types.
path "sys/mounts" {
  capabilities = ["read"]
}
path "+/sys/mounts" {
  capabilities = ["read"]
}
path "sys/mounts/transit" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "type" = ["transit"]
  }
}
path "+/sys/mounts/transit" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "type" = ["transit"]
  }
}
path "sys/mounts/kdc" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "type" = ["kv", "kv-v2"]
    "options" = []
    "description" = []
    "config" = []
  }
}
path "+/sys/mounts/kdc" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "type" = ["kv", "kv-v2"]
    "options" = []
    "description" = []
    "config" = []
  }
}

# Transit keys (<namespace>.<kmskey>, legacy <namespace>-<kmskey>): created (Transit calls that
# an update) never exportable or derived, read, rotated, marked deletable and deleted. Never: export, backup, restore, import, trim,
# encrypt/decrypt/datakey, or any other key setting.
path "transit/keys/+" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "type" = []
    "exportable" = [false]
    "derived" = [false]
  }
}
path "+/transit/keys/+" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "type" = []
    "exportable" = [false]
    "derived" = [false]
  }
}
path "transit/keys/+/rotate" {
  capabilities = ["update"]
}
path "+/transit/keys/+/rotate" {
  capabilities = ["update"]
}
path "transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "deletion_allowed" = [true, false]
  }
}
path "+/transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "deletion_allowed" = [true, false]
  }
}

# Ownership records of Transit keys in the kdc/ KV v2 engine.
path "kdc/data/owners/*" {
  capabilities = ["create", "read", "update"]
}
path "+/kdc/data/owners/*" {
  capabilities = ["create", "read", "update"]
}
path "kdc/metadata/owners/*" {
  capabilities = ["read", "delete", "list"]
}
path "+/kdc/metadata/owners/*" {
  capabilities = ["read", "delete", "list"]
}

# Per-cluster ACL policies (tcp-<namespace>.<cluster>, backup-<namespace>.<cluster>; legacy
# tcp-<cluster>, backup-<cluster>) and their Kubernetes-auth roles on k8s-host.
path "sys/policies/acl/tcp-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "+/sys/policies/acl/tcp-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "sys/policies/acl/backup-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "+/sys/policies/acl/backup-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "auth/k8s-host/role/tcp-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "+/auth/k8s-host/role/tcp-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "auth/k8s-host/role/backup-*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "+/auth/k8s-host/role/backup-*" {
  capabilities = ["create", "read", "update", "delete"]
}
