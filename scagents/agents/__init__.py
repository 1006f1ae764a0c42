"""scagents.agents"""
