"""lattices"""
