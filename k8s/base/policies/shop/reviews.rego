# Who may write reviews: signed-in users, under their own name (the review's user_id is their
# sub). Named on the reviews collection's inserts in config/mongodb.yaml.
package shop.reviews

import rego.v1

default insert := false

insert if {
	input.session.sub != null
	every review in written {
		review.user_id == input.session.sub
	}
}

written := input.arguments.objects if is_array(input.arguments.objects)

written := [input.arguments.object] if is_object(input.arguments.object)

test_users_review_as_themselves if {
	insert with input as {"session": {"sub": "1"}, "arguments": {"object": {"user_id": "1", "rating": 5}}}
}

test_users_do_not_review_as_others if {
	not insert with input as {"session": {"sub": "1"}, "arguments": {"objects": [{"user_id": "2"}]}}
}

test_an_insert_without_reviews_is_not_allowed if {
	not insert with input as {"session": {"sub": "1"}, "arguments": {}}
}

test_anonymous_callers_do_not_review if {
	not insert with input as {"session": null, "arguments": {"object": {"user_id": "1"}}}
}
