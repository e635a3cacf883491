package platform.gateway_test

import data.platform.gateway

request := {
	"api": {"catalogue": "platform", "name": "plain"},
	"client": {"ip": "203.0.113.7"},
	"consumer": {"username": "partner-app"},
	"token": {"sub": "user-42"},
}

deny_list := {"deny": {"consumers": ["stolen-app"], "subjects": ["user-666"], "networks": ["198.51.100.0/24"]}}

test_an_api_without_a_policy_is_allowed if {
	gateway.decision.allow with input as request with data.platform_data as deny_list
}

test_the_emergency_deny_list_refuses_consumers_subjects_and_networks if {
	blocked_consumer := object.union(request, {"consumer": {"username": "stolen-app"}})
	d1 := gateway.decision with input as blocked_consumer with data.platform_data as deny_list
	not d1.allow
	d1.status == 403
	d1.reason == "the consumer is blocked"

	blocked_subject := object.union(request, {"token": {"sub": "user-666"}})
	not gateway.decision.allow with input as blocked_subject with data.platform_data as deny_list

	blocked_network := object.union(request, {"client": {"ip": "198.51.100.9"}})
	d3 := gateway.decision with input as blocked_network with data.platform_data as deny_list
	d3.reason == "the client's network is blocked"
}

test_the_deny_list_wins_over_an_api_that_allows if {
	blocked := object.union(request, {"consumer": {"username": "stolen-app"}})
	not gateway.decision.allow with input as blocked
		with data.platform_data as deny_list
		with data.apis.platform.plain.allow as true
}

test_the_apis_policy_decides_with_its_reason if {
	d := gateway.decision with input as request
		with data.apis.platform.plain.allow as false
		with data.apis.platform.plain.reason as "not on Sundays"
	not d.allow
	d.reason == "not on Sundays"
	gateway.decision.allow with input as request with data.apis.platform.plain.allow as true
}

test_a_policy_that_does_not_say_allow_denies if {
	not gateway.decision.allow with input as request with data.apis.platform.plain.reason as "undecided"
}

test_no_deny_list_at_all_is_no_denial if {
	gateway.decision.allow with input as request
}
