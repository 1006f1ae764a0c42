"""scagents.policies"""
