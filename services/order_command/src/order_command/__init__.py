"""The write side of orders: the only service that changes an order."""
