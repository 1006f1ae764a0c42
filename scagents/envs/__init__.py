"""scagents.envs"""
