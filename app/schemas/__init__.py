"""Shapes, declared once with pydantic: what clients send (inputs) and what they get (outputs).

The same declarations validate requests, serialise responses, feed the
OpenAPI document (spectree) and give templates typed objects.
"""
