"""The read side of orders: a Redis projection kept from the order events."""
