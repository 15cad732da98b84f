"""Resolvers: the engine composed with an executor and stores."""
