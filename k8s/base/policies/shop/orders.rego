# Who may place orders: signed-in users, for themselves only (the user_id of every order they
# insert is their own sub); services and administrators for anyone. Named on the orders table's
# inserts in config/postgres.yaml (`writes: { insert: … }`).
package shop.orders

import rego.v1

default insert := false

insert if {
	input.session.sub != null
	not input.arguments.on_conflict
	every order in placed {
		order.user_id == input.session.sub
	}
}

insert if {
	some role in input.session.roles
	role in {"admin", "service"}
}

# The orders of `insert_orders(objects:)` or `insert_orders_one(object:)`; none otherwise, so
# that `every` above is not vacuously true for a mutation without them.
placed := input.arguments.objects if is_array(input.arguments.objects)

placed := [input.arguments.object] if is_object(input.arguments.object)

test_users_order_for_themselves if {
	insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"objects": [{"user_id": "1"}]}}
	insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"object": {"user_id": "1"}}}
}

test_users_do_not_order_for_others if {
	not insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"objects": [{"user_id": "1"}, {"user_id": "2"}]}}
	not insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"object": {"user_id": "2"}}}
}

test_users_do_not_upsert_over_other_orders if {
	not insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"objects": [{"id": "9", "user_id": "1"}], "on_conflict": {"update_columns": ["user_id"]}}}
}

test_services_order_for_anyone if {
	insert with input as {"session": {"sub": "ml-service", "roles": ["service"]}, "arguments": {"objects": [{"user_id": "2"}]}}
}

test_an_insert_without_orders_is_not_allowed if {
	not insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {}}
}

test_anonymous_callers_do_not_order if {
	not insert with input as {"session": null, "arguments": {"objects": [{"user_id": "1"}]}}
}
