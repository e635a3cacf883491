# METADATA
# title: The platform's decision for every request of an API that asks Open Policy Agent
# description: |
#   The opa-authz Kong plugin posts its input to /v1/data/platform/gateway/decision. The emergency
#   deny list (data.platform_data.deny) refuses first; then the API's own policy, if its catalogue
#   brought one (package apis.<catalogue>.<api>, whose `allow` and `reason` rules decide); an API
#   without a policy of its own is allowed (ACL groups and scopes still apply before OPA is asked).
package platform.gateway

# The emergency deny list: consumers, token subjects and client networks refused at once.
default blocked_consumers := []

blocked_consumers := data.platform_data.deny.consumers

default blocked_subjects := []

blocked_subjects := data.platform_data.deny.subjects

default blocked_networks := []

blocked_networks := data.platform_data.deny.networks

denials contains "the consumer is blocked" if input.consumer.username in blocked_consumers

denials contains "the subject is blocked" if input.token.sub in blocked_subjects

denials contains "the client's network is blocked" if {
	some network in blocked_networks
	net.cidr_contains(network, input.client.ip)
}

# The API's own policy: the rules of package apis.<catalogue>.<api>, if any.
api_policy := data.apis[input.api.catalogue][input.api.name]

api_reason(default_reason) := reason if {
	reason := api_policy.reason
	is_string(reason)
} else := default_reason

default decision := {"allow": false, "status": 403, "reason": "no decision"}

decision := {"allow": false, "status": 403, "reason": concat("; ", sort(denials))} if {
	count(denials) > 0
} else := {"allow": true, "reason": api_reason("allowed by the API's policy")} if {
	api_policy.allow == true
} else := {"allow": false, "status": 403, "reason": api_reason("denied by the API's policy")} if {
	api_policy
} else := {"allow": true, "reason": "the API has no policy of its own"}
