"""order_query's queues, by base name (each has its `<name>.dlq`): what its consumers read,
and what its command line's dead-letter commands act on, without loading the consumers."""

ORDERS_QUEUE = "order_query.orders"
USERS_QUEUE = "order_query.users"
