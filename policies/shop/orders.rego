# Who may place orders: signed-in users, for themselves only (every object's user_id is their
# own sub); services and administrators for anyone.
package shop.orders

import rego.v1

default insert := false

insert if {
	input.session.sub != null
	every order in input.arguments.objects {
		order.user_id == input.session.sub
	}
}

insert if {
	some role in input.session.roles
	role in {"admin", "service"}
}

test_users_order_for_themselves if {
	insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"objects": [{"user_id": "1"}]}}
}

test_users_do_not_order_for_others if {
	not insert with input as {"session": {"sub": "1", "roles": ["user"]}, "arguments": {"objects": [{"user_id": "1"}, {"user_id": "2"}]}}
}

test_services_order_for_anyone if {
	insert with input as {"session": {"sub": "ml-service", "roles": ["service"]}, "arguments": {"objects": [{"user_id": "2"}]}}
}
