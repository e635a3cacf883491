package apis.platform.assistant_test

import data.apis.platform.assistant as policy

tenants := {"tenants": {
	"acme": {"assistant": true},
	"initech": {"assistant": true, "until": "2020-01-01T00:00:00Z"},
	"globex": {"assistant": false},
}}

caller(tenant) := {"token": {"sub": "user-42", "claims": {"tenant": tenant}}}

test_an_entitled_tenant_is_allowed if {
	policy.allow with input as caller("acme") with data.catalogue_data.platform.assistant as tenants
}

test_a_tenant_without_the_entitlement_is_refused if {
	not policy.allow with input as caller("globex") with data.catalogue_data.platform.assistant as tenants
	policy.reason == "tenant globex is not entitled to the assistant" with input as caller("globex")
		with data.catalogue_data.platform.assistant as tenants
	not policy.allow with input as caller("unknown") with data.catalogue_data.platform.assistant as tenants
}

test_an_ended_entitlement_is_refused if {
	not policy.allow with input as caller("initech") with data.catalogue_data.platform.assistant as tenants
	policy.reason == "the entitlement of tenant initech ended on 2020-01-01T00:00:00Z" with input as caller("initech")
		with data.catalogue_data.platform.assistant as tenants
}

test_a_token_without_a_tenant_is_refused if {
	not policy.allow with input as {"token": {"claims": {}}} with data.catalogue_data.platform.assistant as tenants
	policy.reason == "the token names no tenant" with input as {"token": {"claims": {}}}
		with data.catalogue_data.platform.assistant as tenants
}
