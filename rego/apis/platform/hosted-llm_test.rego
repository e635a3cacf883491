package apis.platform.hosted_llm_test

import data.apis.platform["hosted-llm"] as policy

models := {"models_by_group": {"ml-engineers": ["gpt-large", "llama-70b"], "staff": ["llama-70b"]}}

test_a_group_calls_the_models_it_is_given if {
	policy.allow with input as {"groups": ["staff"], "request": {"body": {"model": "llama-70b"}}}
		with data.catalogue_data.platform["hosted-llm"] as models
	policy.allow with input as {"groups": ["ml-engineers"], "request": {"headers": {"x-model": "gpt-large"}}}
		with data.catalogue_data.platform["hosted-llm"] as models
}

test_a_model_outside_the_callers_groups_is_refused_with_its_name if {
	request := {"groups": ["staff"], "request": {"body": {"model": "gpt-large"}}}
	not policy.allow with input as request with data.catalogue_data.platform["hosted-llm"] as models
	policy.reason == "model gpt-large is not allowed for your groups" with input as request
		with data.catalogue_data.platform["hosted-llm"] as models
}

test_the_header_wins_over_the_body if {
	request := {"groups": ["staff"], "request": {"headers": {"x-model": "gpt-large"}, "body": {"model": "llama-70b"}}}
	not policy.allow with input as request with data.catalogue_data.platform["hosted-llm"] as models
}

test_no_model_and_no_groups_are_refused if {
	not policy.allow with input as {"groups": ["staff"], "request": {}}
		with data.catalogue_data.platform["hosted-llm"] as models
	policy.reason == "the request names no model" with input as {"groups": ["staff"], "request": {}}
		with data.catalogue_data.platform["hosted-llm"] as models
	not policy.allow with input as {"groups": [], "request": {"body": {"model": "llama-70b"}}}
		with data.catalogue_data.platform["hosted-llm"] as models
}
