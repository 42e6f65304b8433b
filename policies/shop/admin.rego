# Who may change the demo shop's catalog and accounts: administrators, and never every row at
# once. The subgraph configs name this policy on the generated mutations (`writes:` in
# config/postgres.yaml and config/mongodb.yaml), which puts
# @policy(policies: [["shop.admin.write"]]) on them; the gateway evaluates the rule
# data.shop.admin.write and allows when it is true. Input: session (sub, iss, scopes, roles,
# claims), operation (name, kind), coordinate ("Mutation.update_products"), type, field,
# arguments, subgraph.
package shop.admin

import rego.v1

default write := false

write if {
	"admin" in input.session.roles
	not unbounded
}

# A bulk update or delete whose `where` names no condition would reach every row.
unbounded if {
	is_object(input.arguments.where)
	count(object.keys(input.arguments.where)) == 0
}

test_admins_write_named_rows if {
	write with input as {"session": {"roles": ["admin"]}, "arguments": {"where": {"id": {"_eq": "1"}}}}
}

test_admins_write_by_key_and_insert if {
	write with input as {"session": {"roles": ["admin"]}, "arguments": {"id": "1", "_set": {"price": 2}}}
	write with input as {"session": {"roles": ["admin"]}, "arguments": {"objects": [{"name": "x"}]}}
}

test_admins_do_not_write_every_row if {
	not write with input as {"session": {"roles": ["admin"]}, "arguments": {"where": {}}}
}

test_users_do_not_write if {
	not write with input as {"session": {"roles": ["user"]}, "arguments": {"where": {"id": {"_eq": "1"}}}}
}

test_anonymous_callers_do_not_write if {
	not write with input as {"session": null, "arguments": {"where": {"id": {"_eq": "1"}}}}
}
