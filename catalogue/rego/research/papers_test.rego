package apis.research.papers_test

import data.apis.research.papers as policy

writers := {"writers": ["research-editors"]}

test_everyone_reads if {
	policy.allow with input as {"request": {"method": "GET"}, "groups": ["researchers"]}
		with data.catalogue_data.research.papers as writers
}

test_only_editors_write if {
	not policy.allow with input as {"request": {"method": "POST"}, "groups": ["researchers"]}
		with data.catalogue_data.research.papers as writers
	policy.allow with input as {"request": {"method": "DELETE"}, "groups": ["researchers", "research-editors"]}
		with data.catalogue_data.research.papers as writers
}
