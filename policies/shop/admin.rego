# Who may change the demo shop's products. A policy named in the supergraph as
# @policy(policies: [["shop.products.write"]]) is the rule data.shop.products.write; it allows
# when it is true. Input: session (sub, iss, scopes, roles, claims), operation (name, kind),
# coordinate ("Mutation.update_products"), type, field, arguments, subgraph.
package shop.products

import rego.v1

default write := false

# Administrators change products, and never every product at once: a `where` must say which.
write if {
	"admin" in input.session.roles
	count(object.keys(input.arguments.where)) > 0
}

test_admins_write_named_products if {
	write with input as {"session": {"roles": ["admin"]}, "arguments": {"where": {"id": {"_eq": "1"}}}}
}

test_admins_do_not_write_every_product if {
	not write with input as {"session": {"roles": ["admin"]}, "arguments": {"where": {}}}
}

test_users_do_not_write if {
	not write with input as {"session": {"roles": ["user"]}, "arguments": {"where": {"id": {"_eq": "1"}}}}
}

test_anonymous_callers_do_not_write if {
	not write with input as {"session": null, "arguments": {"where": {"id": {"_eq": "1"}}}}
}
