# METADATA
# title: Which models a group may call on the partner's hosted LLM
# description: |
#   The model comes from the body (the opa-authz plugin sends it for this API, at most 64 KiB) or
#   the x-model header; data.catalogue_data.platform["hosted-llm"].models_by_group lists, per group
#   of the token, the models it may call. A request naming no model is refused: the partner bills
#   by model.
package apis.platform["hosted-llm"]

models_by_group := data.catalogue_data.platform["hosted-llm"].models_by_group

requested_model := input.request.headers["x-model"] if {
	is_string(input.request.headers["x-model"])
} else := input.request.body.model if {
	is_string(input.request.body.model)
}

allowed_models contains model if {
	some group in input.groups
	some model in object.get(models_by_group, group, [])
}

default allow := false

allow if requested_model in allowed_models

reason := "the request names no model" if {
	not requested_model
} else := sprintf("model %s is not allowed for your groups", [requested_model]) if {
	not allow
}
