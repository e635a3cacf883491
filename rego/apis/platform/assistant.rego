# METADATA
# title: Per-tenant entitlement to the assistant
# description: |
#   The token's tenant claim (the opa-authz plugin copies it into the input) must name a tenant
#   entitled to the assistant in data.catalogue_data.platform.assistant.tenants, and the tenant's
#   entitlement may end: `until` (RFC 3339) is checked against the decision time.
package apis.platform.assistant

tenants := data.catalogue_data.platform.assistant.tenants

tenant := input.token.claims.tenant

named if is_string(tenant)

entitlement := tenants[tenant]

expired if time.parse_rfc3339_ns(entitlement.until) <= time.now_ns()

default allow := false

allow if {
	entitlement.assistant == true
	not expired
}

reason := "the token names no tenant" if {
	not named
} else := sprintf("tenant %s is not entitled to the assistant", [tenant]) if {
	not entitlement.assistant == true
} else := sprintf("the entitlement of tenant %s ended on %s", [tenant, entitlement.until]) if {
	expired
}
