# METADATA
# title: The research team's papers, read by every researcher and written by editors
# description: |
#   Reading (GET, HEAD) is open to every caller the API's ACL admitted; writing needs one of the
#   groups in data.catalogue_data.research.papers.writers.
package apis.research.papers

writers := data.catalogue_data.research.papers.writers

default allow := false

allow if input.request.method in {"GET", "HEAD"}

allow if {
	some group in input.groups
	group in writers
}

reason := sprintf("%s needs one of the groups %v", [input.request.method, writers]) if not allow
